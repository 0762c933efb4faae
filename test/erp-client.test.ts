import { createErpStack, type ErpStack, type ErpStackOptions } from '../src/erp/stack';
import { ErpAuthError, ErpBadResponseError, ErpCircuitOpenError, ErpClosedError, ErpHttpStatusError, ErpScriptError, ErpSessionError, ErpSocketError } from '../src/erp/errors';
import { ForwardedSession, ServiceAccountSession } from '../src/erp/layers/session';
import type { CallContext } from '../src/erp/client';
import { startSimulator, type Simulator } from '../src/simulator/server';
import { until } from './helpers';

/** The ERP client against the simulator over real HTTP. */
let sim: Simulator;
let stack: ErpStack;

function options(overrides: Partial<ErpStackOptions> = {}): ErpStackOptions {
  return {
    transport: {
      baseUrl: sim.url, connections: 8, connectTimeoutMs: 1000, headersTimeoutMs: 2000, bodyTimeoutMs: 2000,
      totalTimeoutMs: 3000, maxResponseBytes: 1 << 22, contentType: 'application/zsml; charset=utf-8',
    },
    credentials: { user: 'admin', password: 'zb-sim-admin', serialnum: 'client-test' },
    retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 2 },
    breaker: { errorThresholdPercentage: 50, volumeThreshold: 1000, resetTimeoutMs: 60000, rollingWindowMs: 60000 },
    limiter: { maxConcurrent: 32, maxWaitMs: 5000 },
    coalesce: false,
    ...overrides,
  };
}
const ctx = (): CallContext => ({ auth: stack.serviceSession as ServiceAccountSession });

beforeEach(async () => {
  sim = await startSimulator({ sessionTimeoutMs: 60000 });
  stack = createErpStack(options());
});
afterEach(async () => {
  await stack.close();
  await sim.close();
});

describe('requests on the wire', () => {
  it('sends the PostClass envelope as application/zsml with the session in the body', async () => {
    await stack.client.list(ctx(), [{ id: 'pagesize', val: '5' }]);
    const [login, list] = sim.calls.all();
    expect(login).toEqual(expect.objectContaining({ endpoint: 'login', datas: { user: 'txt:admin', password: 'txt:zb-sim-admin', serialnum: 'txt:client-test' } }));
    expect(list).toEqual(expect.objectContaining({ endpoint: 'list', cmdkey: 'refresh', datas: { pagesize: '5' }, contentType: 'application/zsml; charset=utf-8' }));
    expect(list!.session).toMatch(/^[0-9A-F]{32}$/);
  });

  it('decodes list rows by column id, the empty quirk, and details / not found', async () => {
    const table = await stack.client.list(ctx(), [{ id: 'pagesize', val: '3' }]);
    expect(table.rows).toHaveLength(3);
    expect(Object.keys(table.rows[0]!)).toEqual(expect.arrayContaining(['ord', 'title', 'khmc', 'date1']));
    const empty = await stack.client.list(ctx(), [{ id: 'title', val: 'nothing-matches-this' }]);
    expect(empty.rows).toEqual([]);
    const detail = await stack.client.detail(ctx(), '1001');
    expect(detail.kind).toBe('bill');
    const missing = await stack.client.detail(ctx(), '424242');
    expect(missing).toEqual({ kind: 'message', message: expect.objectContaining({ text: '抱歉，您访问的单据已被删除！' }) });
  });

  it('tolerates rows shaped {value: [...]}', async () => {
    const objSim = await startSimulator({ rowsAsObjects: true });
    const s = createErpStack({ ...options(), transport: { ...options().transport, baseUrl: objSim.url } });
    try {
      const t = await s.client.list({ auth: s.serviceSession! }, [{ id: 'pagesize', val: '2' }]);
      expect(t.rows[0]!.ord).toMatch(/^\d+$/);
    } finally {
      await s.close();
      await objSim.close();
    }
  });

  it('returns save validation texts as messages', async () => {
    const m = await stack.client.process(ctx(), [{ id: 'ord', val: '1001' }, { id: 'cateid', val: '2' }, { id: 'info1', val: 'x' }, { id: 'cate', val: '5' }, { id: 'intro', val: '' }]);
    expect(m.text).toBe('处理结果不能为空');
  });
});

describe('sessions', () => {
  it.each([1, 2, 9, 10] as const)('status %p: logs in again once and repeats the call', async (status) => {
    await stack.client.list(ctx(), []);
    for (const t of sim.sessions.tokens()) sim.sessions.revoke(t, status);
    sim.calls.clear();
    await stack.client.list(ctx(), []);
    expect(sim.calls.all().map((c) => c.endpoint)).toEqual(['list', 'login', 'list']);
  });

  it('expired session with N concurrent calls causes exactly one login (single-flight)', async () => {
    await stack.client.list(ctx(), []);
    sim.advanceClock(61000);
    sim.calls.clear();
    await Promise.all(Array.from({ length: 25 }, (_, i) => stack.client.detail(ctx(), String(1001 + i))));
    expect(sim.calls.count('login')).toBe(1);
    expect(sim.calls.count('detail')).toBe(50);
  });

  it('a second session failure surfaces, with no loop', async () => {
    await stack.client.list(ctx(), []);
    sim.calls.clear();
    sim.faults.inject({ kind: 'session10', endpoint: 'list', times: 2 });
    await expect(stack.client.list(ctx(), [])).rejects.toThrow(ErpSessionError);
    expect(sim.calls.all().map((c) => c.endpoint)).toEqual(['list', 'login', 'list']);
  });

  it('a frozen or invalid account is a fatal auth error, and no login is tried again while it backs off', async () => {
    sim.users.find((u) => u.name === 'admin')!.state = 'frozen';
    await expect(stack.client.list(ctx(), [])).rejects.toThrow(ErpAuthError);
    sim.users.find((u) => u.name === 'admin')!.state = 'invalid';
    sim.calls.clear();
    // The refusal (status 5) stands for the backoff period: the next call fails with it and reaches no ERP page.
    await expect(stack.client.list(ctx(), [])).rejects.toEqual(expect.objectContaining({ status: 5 }));
    expect(sim.calls.count()).toBe(0);
  });

  it('a wrong password is an auth error that never names the password', async () => {
    const s = createErpStack({ ...options(), credentials: { user: 'admin', password: 'wrong-secret-pw', serialnum: 'x' } });
    try {
      const err = (await s.client.list({ auth: s.serviceSession! }, []).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(ErpAuthError);
      expect(err.message).not.toContain('wrong-secret-pw');
    } finally {
      await s.close();
    }
  });

  it('a forwarded user session is never renewed', async () => {
    const auth = new ForwardedSession('NOT-A-TOKEN', 'h');
    await expect(stack.client.list({ auth }, [])).rejects.toThrow(ErpSessionError);
    expect(sim.calls.all().map((c) => c.endpoint)).toEqual(['list']);
  });
});

describe('failures', () => {
  beforeEach(() => stack.client.list(ctx(), []).then(() => sim.calls.clear()));

  it.each<[string, new (...a: never[]) => Error]>([
    ['html', ErpBadResponseError],
    ['badJson', ErpBadResponseError],
    ['http500', ErpHttpStatusError],
    ['status11', ErpScriptError],
    ['drop', ErpSocketError],
  ])('%s fault -> %p', async (kind, cls) => {
    sim.faults.inject({ kind: kind as never, endpoint: 'list' });
    await expect(stack.client.list(ctx(), [])).rejects.toThrow(cls);
  });

  it('a stalled ERP ends in a timeout, not a hang', async () => {
    const s = createErpStack({ ...options(), transport: { ...options().transport, headersTimeoutMs: 200, totalTimeoutMs: 5000 } });
    try {
      await s.client.list({ auth: s.serviceSession! }, []);
      sim.faults.inject({ kind: 'stall', endpoint: 'list' });
      await expect(s.client.list({ auth: s.serviceSession! }, [])).rejects.toEqual(expect.objectContaining({ code: 'ERP_TIMEOUT', phase: 'headers' }));
    } finally {
      await s.close();
    }
  });

  it('an unreachable ERP is a connect error that says nothing was sent', async () => {
    const port = sim.port;
    await sim.close();
    const s = createErpStack({ ...options(), transport: { ...options().transport, baseUrl: `http://127.0.0.1:${port}` } });
    try {
      await expect(s.client.list({ auth: new ForwardedSession('T', 'h') }, [])).rejects.toEqual(expect.objectContaining({ code: 'ERP_CONNECT', mayHaveReachedErp: false }));
    } finally {
      await s.close();
      sim = await startSimulator();
    }
  });

  it('reads are retried with backoff; saves never', async () => {
    const s = createErpStack(options({ retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2 } }));
    try {
      const auth = s.serviceSession!;
      await s.client.list({ auth }, []);
      sim.calls.clear();
      sim.faults.inject({ kind: 'html', endpoint: 'list', times: 2 });
      await s.client.list({ auth }, []);
      expect(sim.calls.count('list')).toBe(3);
      sim.faults.inject({ kind: 'drop', endpoint: 'process' });
      await expect(s.client.process({ auth }, [{ id: 'ord', val: '1001' }])).rejects.toThrow(ErpSocketError);
      expect(sim.calls.count('process')).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('the breaker opens on repeated failures, fails fast, and a half-open probe closes it', async () => {
    const states: string[] = [];
    const s = createErpStack(options({ breaker: { errorThresholdPercentage: 50, volumeThreshold: 4, resetTimeoutMs: 50, rollingWindowMs: 10000 } }), { breaker: (st) => states.push(st) });
    try {
      const auth = s.serviceSession!;
      await s.client.list({ auth }, []);
      // login + list succeeded; 3 failures of 5 calls is 60% > 50% with the volume (4) reached.
      sim.faults.inject({ kind: 'status11', endpoint: 'list', times: 3 });
      for (let i = 0; i < 3; i++) await expect(s.client.list({ auth }, [])).rejects.toThrow(ErpScriptError);
      expect(s.breaker.state).toBe('open');
      sim.calls.clear();
      await expect(s.client.list({ auth }, [])).rejects.toThrow(ErpCircuitOpenError);
      expect(sim.calls.count()).toBe(0);
      // Wait for the breaker's own half-open event, not for a clock.
      await until(() => s.breaker.state === 'halfOpen', 'the breaker half-opened');
      await s.client.list({ auth }, []);
      expect(s.breaker.state).toBe('closed');
      expect(states).toEqual(['open', 'halfOpen', 'close']);
    } finally {
      await s.close();
    }
  });
});

describe('coalescing', () => {
  it('identical reads in flight share one call; other identities and datas do not', async () => {
    const s = createErpStack(options({ coalesce: true }));
    try {
      const auth = s.serviceSession!;
      await s.client.list({ auth }, []);
      sim.faults.configure({ latencyMs: 20 });
      sim.calls.clear();
      const other = new ForwardedSession(sim.sessions.tokens()[0]!, 'other-identity');
      await Promise.all([
        ...Array.from({ length: 10 }, () => s.client.detail({ auth }, '1001')),
        s.client.detail({ auth }, '1002'),
        s.client.detail({ auth: other }, '1001'),
      ]);
      expect(sim.calls.count('detail')).toBe(3);
    } finally {
      await s.close();
    }
  });

  // Regression: a caller whose signal was already aborted used to start a flight nobody listened to, and its
  // rejection crashed the process as unhandled.
  it('a caller that already gave up starts no ERP call and leaves no unhandled rejection', async () => {
    const s = createErpStack(options({ coalesce: true }));
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const auth = s.serviceSession!;
      await s.client.list({ auth }, []);
      sim.calls.clear();
      await expect(s.client.detail({ auth, signal: AbortSignal.abort() }, '1001')).rejects.toEqual(expect.objectContaining({ code: 'ERP_ABORTED' }));
      // Let any stray rejection surface before looking.
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
      expect(sim.calls.count('detail')).toBe(0);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await s.close();
    }
  });
});

describe('abandoned callers and shutdown', () => {
  // Regression (bench run, issue 5): resolvers of a request whose client had disconnected kept asking for fields; the
  // calls went through the breaker, and once close() had shut it down they failed with opossum's untyped ESHUTDOWN,
  // logged as "unexpected error".
  it('a read whose caller already gave up is refused before it is sent (coalescing off, so nothing above checks)', async () => {
    const attempts: string[] = [];
    const s = createErpStack(options(), { attempt: (call) => attempts.push(call.endpoint) });
    await s.client.list({ auth: s.serviceSession! }, []);
    sim.calls.clear();
    attempts.length = 0;
    const gone = { auth: s.serviceSession!, signal: AbortSignal.abort() };
    await expect(s.client.detail(gone, '1001')).rejects.toEqual(expect.objectContaining({ code: 'ERP_ABORTED', mayHaveReachedErp: false }));
    await expect(s.client.list(gone, [])).rejects.toEqual(expect.objectContaining({ code: 'ERP_ABORTED', mayHaveReachedErp: false }));
    // Not an attempt on the wire either: the breaker and the limiter never saw them.
    expect(attempts).toEqual([]);
    expect(sim.calls.count()).toBe(0);
    await s.close();
  });

  it('after close every call fails with ERP_CLIENT_CLOSED and nothing is sent', async () => {
    await stack.client.list(ctx(), []);
    sim.calls.clear();
    await stack.close();
    await expect(stack.client.detail(ctx(), '1001')).rejects.toBeInstanceOf(ErpClosedError);
    await expect(stack.client.process(ctx(), [{ id: 'ord', val: '1001' }])).rejects.toEqual(expect.objectContaining({ code: 'ERP_CLIENT_CLOSED', mayHaveReachedErp: false }));
    expect(sim.calls.count()).toBe(0);
  });

  it('a read retrying when close() is called ends as ERP_CLIENT_CLOSED, not an untyped breaker error', async () => {
    const s: ErpStack = createErpStack(options({ retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 1, random: () => 0 } }), {
      // Closing exactly between the failed attempt and the retry.
      retry: () => void s.close(),
    });
    await s.client.list({ auth: s.serviceSession! }, []);
    sim.calls.clear();
    sim.faults.inject({ kind: 'http500', endpoint: 'detail' });
    await expect(s.client.detail({ auth: s.serviceSession! }, '1001')).rejects.toBeInstanceOf(ErpClosedError);
    expect(sim.calls.count('detail')).toBe(1);
  });
});

describe('the read cache, built by the stack from its options', () => {
  const settings = { ttlMs: 60_000, staleMs: 0, maxEntries: 10, maxBytes: 1 << 20 };

  it('with a TTL, a repeated read is served without a call until a save of that service', async () => {
    const s = createErpStack(options({ cache: settings }));
    try {
      const auth = s.serviceSession!;
      expect(s.cache).toBeDefined();
      await s.client.detail({ auth }, '1001');
      sim.calls.clear();
      await s.client.detail({ auth }, '1001');
      expect(sim.calls.count('detail')).toBe(0);
      await s.serviceCache.afterSave('1001');
      await s.client.detail({ auth }, '1001');
      expect(sim.calls.count('detail')).toBe(1);
    } finally {
      await s.close();
    }
  });

  it('a TTL of 0 (ZB_CACHE_TTL_MS unset) builds none: every read is a call', async () => {
    const s = createErpStack(options({ cache: { ...settings, ttlMs: 0 } }));
    try {
      expect(s.cache).toBeUndefined();
      const auth = s.serviceSession!;
      await s.client.detail({ auth }, '1001');
      await s.client.detail({ auth }, '1001');
      expect(sim.calls.count('detail')).toBe(2);
    } finally {
      await s.close();
    }
  });
});

it('every failure carries the path of the call it ended', async () => {
  await stack.client.list(ctx(), []);
  sim.faults.inject({ kind: 'http500', endpoint: 'detail' });
  await expect(stack.client.detail(ctx(), '1001')).rejects.toEqual(expect.objectContaining({ code: 'ERP_HTTP_STATUS', path: '/sysa/mobilephone/salesmanage/service/add.asp' }));
  await stack.close();
  await expect(stack.client.list(ctx(), [])).rejects.toEqual(expect.objectContaining({ code: 'ERP_CLIENT_CLOSED', path: '/sysa/mobilephone/salesmanage/service/list.asp' }));
});
