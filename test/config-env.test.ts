import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../src/config';
import { startSimulator, type Simulator } from '../src/simulator/server';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from '../src/simulator/users';
import { until } from './helpers';
import { poll } from './support/attack';
import { runUntilExit, startSubgraph, stopAllSubgraphs, type ChildSubgraph } from './support/spawn-subgraph';

/** Configuration as users set it: environment strings, validated by loadConfig (and by main for the exit code). */
function rejects(env: Record<string, string>, variable: string, message?: RegExp): void {
  let error: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const text = (error as Error).message;
  expect(text).toMatch(new RegExp(`^\\s+${variable}: `, 'm'));
  if (message) expect(text).toMatch(message);
}

afterAll(() => stopAllSubgraphs());

describe("`PORT=' '` binds a random port", () => {
  it.each([' ', '   ', '\t', '1 2', ' 4001', '4001 ', '1e3', '0x10', '12ms', '-1', '+80', '4001.0', '٤٠٠١'])('rejects PORT=%j', (port) => {
    rejects({ PORT: port }, 'PORT', /digits/);
  });

  it('applies the same digits-only rule to every number', () => {
    rejects({ ZB_TIMEOUT_MS: ' ' }, 'ZB_TIMEOUT_MS');
    rejects({ ZB_MAX_PAGE_SIZE: '1e2' }, 'ZB_MAX_PAGE_SIZE');
    rejects({ ZB_RETRY_BASE_MS: '0x10' }, 'ZB_RETRY_BASE_MS');
    rejects({ ZB_DETAIL_CONCURRENCY: '4 ' }, 'ZB_DETAIL_CONCURRENCY');
    rejects({ ZB_SHUTDOWN_TIMEOUT_MS: '60s' }, 'ZB_SHUTDOWN_TIMEOUT_MS');
  });

  it('accepts plain digits, keeps range checks, and treats an empty value as unset', () => {
    expect(loadConfig({ PORT: '8080' }).PORT).toBe(8080);
    expect(loadConfig({ PORT: '0' }).PORT).toBe(0);
    expect(loadConfig({ PORT: '' }).PORT).toBe(4001);
    expect(loadConfig({}).PORT).toBe(4001);
    rejects({ PORT: '65536' }, 'PORT');
  });

  it('main exits with code 2 and names PORT', async () => {
    const { code, stderr } = await runUntilExit({ PORT: ' ' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^\s+PORT: .*digits/m);
  }, 60_000);
});

describe('`ZB_RETRY_MAX_MS < ZB_RETRY_BASE_MS` is accepted', () => {
  it('rejects retry max below retry base', () => {
    rejects({ ZB_RETRY_BASE_MS: '500', ZB_RETRY_MAX_MS: '100' }, 'ZB_RETRY_MAX_MS', /ZB_RETRY_BASE_MS/);
    rejects({ ZB_RETRY_MAX_MS: '50', ZB_RETRY_BASE_MS: '51' }, 'ZB_RETRY_MAX_MS');
    expect(loadConfig({ ZB_RETRY_BASE_MS: '100', ZB_RETRY_MAX_MS: '100' }).ZB_RETRY_MAX_MS).toBe(100);
  });

  it('rejects detail concurrency above the process-wide ERP call cap', () => {
    rejects({ ZB_DETAIL_CONCURRENCY: '16', ZB_MAX_CONCURRENT_CALLS: '8' }, 'ZB_DETAIL_CONCURRENCY', /ZB_MAX_CONCURRENT_CALLS/);
    // Set alone above the default cap (16, the default sockets): the cap is not raised behind the operator's back.
    rejects({ ZB_DETAIL_CONCURRENCY: '64' }, 'ZB_DETAIL_CONCURRENCY', /ZB_MAX_CONCURRENT_CALLS/);
    rejects({ ZB_DETAIL_CONCURRENCY: '17' }, 'ZB_DETAIL_CONCURRENCY', /17 > 16/);
    expect(loadConfig({ ZB_DETAIL_CONCURRENCY: '8', ZB_MAX_CONCURRENT_CALLS: '8' }).ZB_DETAIL_CONCURRENCY).toBe(8);
  });

  it('rejects login backoff max below login backoff', () => {
    rejects({ ZB_LOGIN_BACKOFF_MS: '60000', ZB_LOGIN_BACKOFF_MAX_MS: '1000' }, 'ZB_LOGIN_BACKOFF_MAX_MS', /ZB_LOGIN_BACKOFF_MS/);
  });

  it('rejects a shutdown timeout that cannot fit a save and its confirming re-read', () => {
    rejects({ ZB_TIMEOUT_MS: '15000', ZB_SHUTDOWN_TIMEOUT_MS: '30000' }, 'ZB_SHUTDOWN_TIMEOUT_MS', /ZB_TIMEOUT_MS/);
    rejects({ ZB_TIMEOUT_MS: '30000', ZB_SHUTDOWN_TIMEOUT_MS: '40000' }, 'ZB_SHUTDOWN_TIMEOUT_MS');
    // Set alone below the default ERP timeout (2 x 15000): the ERP timeout is not shrunk behind the operator's back.
    rejects({ ZB_SHUTDOWN_TIMEOUT_MS: '20000' }, 'ZB_SHUTDOWN_TIMEOUT_MS');
    expect(loadConfig({ ZB_TIMEOUT_MS: '15000', ZB_SHUTDOWN_TIMEOUT_MS: '30001' }).ZB_SHUTDOWN_TIMEOUT_MS).toBe(30001);
  });

  it('a value left unset follows its explicit partner where that is safe', () => {
    const defaults = loadConfig({});
    expect(defaults).toMatchObject({
      ZB_RETRY_BASE_MS: 100,
      ZB_RETRY_MAX_MS: 2000,
      ZB_MAX_CONNECTIONS: 16,
      ZB_DETAIL_CONCURRENCY: 8,
      ZB_MAX_CONCURRENT_CALLS: 16,
      ZB_LOGIN_BACKOFF_MS: 60000,
      ZB_LOGIN_BACKOFF_MAX_MS: 3600000,
      ZB_TIMEOUT_MS: 15000,
      ZB_SHUTDOWN_TIMEOUT_MS: 40000,
    });
    expect(loadConfig({ ZB_RETRY_BASE_MS: '5000' }).ZB_RETRY_MAX_MS).toBe(5000);
    expect(loadConfig({ ZB_RETRY_MAX_MS: '50' }).ZB_RETRY_BASE_MS).toBe(50);
    expect(loadConfig({ ZB_MAX_CONCURRENT_CALLS: '1' }).ZB_DETAIL_CONCURRENCY).toBe(1);
    expect(loadConfig({ ZB_LOGIN_BACKOFF_MS: '7200000' }).ZB_LOGIN_BACKOFF_MAX_MS).toBe(7200000);
    expect(loadConfig({ ZB_LOGIN_BACKOFF_MAX_MS: '1000' }).ZB_LOGIN_BACKOFF_MS).toBe(1000);
    expect(loadConfig({ ZB_TIMEOUT_MS: '30000' }).ZB_SHUTDOWN_TIMEOUT_MS).toBe(70000);
  });
});

describe('Defaults that use the ERP capacity they are given: the call caps derive from ZB_MAX_CONNECTIONS', () => {
  const caps = (env: Record<string, string>) => {
    const c = loadConfig(env);
    return [c.ZB_MAX_CONNECTIONS, c.ZB_MAX_CONCURRENT_CALLS, c.ZB_DETAIL_CONCURRENCY];
  };

  it.each([
    // sockets alone: the process-wide call cap is the sockets, each request's share half of it (rounded up)
    [{}, [16, 16, 8]],
    [{ ZB_MAX_CONNECTIONS: '4' }, [4, 4, 2]],
    [{ ZB_MAX_CONNECTIONS: '1' }, [1, 1, 1]],
    [{ ZB_MAX_CONNECTIONS: '5' }, [5, 5, 3]],
    [{ ZB_MAX_CONNECTIONS: '64' }, [64, 64, 32]],
    [{ ZB_MAX_CONNECTIONS: '' }, [16, 16, 8]],
    // the call cap alone: the sockets follow it up (never down), the share follows it
    [{ ZB_MAX_CONCURRENT_CALLS: '8' }, [16, 8, 4]],
    [{ ZB_MAX_CONCURRENT_CALLS: '32' }, [32, 32, 16]],
    [{ ZB_MAX_CONCURRENT_CALLS: '1' }, [16, 1, 1]],
    // the share alone, or with the sockets
    [{ ZB_DETAIL_CONCURRENCY: '3' }, [16, 16, 3]],
    [{ ZB_MAX_CONNECTIONS: '4', ZB_DETAIL_CONCURRENCY: '4' }, [4, 4, 4]],
    [{ ZB_MAX_CONCURRENT_CALLS: '32', ZB_DETAIL_CONCURRENCY: '32' }, [32, 32, 32]],
    // explicit values win, whatever the rule would have derived
    [{ ZB_MAX_CONNECTIONS: '20', ZB_MAX_CONCURRENT_CALLS: '12', ZB_DETAIL_CONCURRENCY: '12' }, [20, 12, 12]],
    [{ ZB_MAX_CONNECTIONS: '8', ZB_MAX_CONCURRENT_CALLS: '8', ZB_DETAIL_CONCURRENCY: '1' }, [8, 8, 1]],
  ])('%j -> sockets, process call cap, per-request share %j', (env, expected) => {
    expect(caps(env)).toEqual(expected);
  });

  it('refuses contradictions, naming the variable and the partner it contradicts', () => {
    // more calls than sockets would only wait inside the HTTP client, outside ZB_QUEUE_TIMEOUT_MS
    rejects({ ZB_MAX_CONNECTIONS: '16', ZB_MAX_CONCURRENT_CALLS: '32' }, 'ZB_MAX_CONCURRENT_CALLS', /ZB_MAX_CONNECTIONS \(32 > 16\)/);
    rejects({ ZB_MAX_CONNECTIONS: '4', ZB_MAX_CONCURRENT_CALLS: '5' }, 'ZB_MAX_CONCURRENT_CALLS', /HTTP client/);
    // a share above the cap derived from the sockets: the cap is not raised to fit it
    rejects({ ZB_MAX_CONNECTIONS: '4', ZB_DETAIL_CONCURRENCY: '8' }, 'ZB_DETAIL_CONCURRENCY', /ZB_MAX_CONCURRENT_CALLS \(8 > 4\)/);
    rejects({ ZB_MAX_CONCURRENT_CALLS: '4', ZB_DETAIL_CONCURRENCY: '5' }, 'ZB_DETAIL_CONCURRENCY', /5 > 4/);
    // the ranges hold for every one of them
    rejects({ ZB_MAX_CONNECTIONS: '0' }, 'ZB_MAX_CONNECTIONS');
    rejects({ ZB_MAX_CONNECTIONS: '1025' }, 'ZB_MAX_CONNECTIONS');
    rejects({ ZB_MAX_CONCURRENT_CALLS: '1025' }, 'ZB_MAX_CONCURRENT_CALLS');
    rejects({ ZB_MAX_CONNECTIONS: '4 ' }, 'ZB_MAX_CONNECTIONS', /digits/);
  });

  it('main exits with code 2 on a contradiction and names the variable', async () => {
    const { code, stderr } = await runUntilExit({ ZB_MAX_CONNECTIONS: '4', ZB_MAX_CONCURRENT_CALLS: '8' });
    expect(code).toBe(2);
    expect(stderr).toMatch(/^\s+ZB_MAX_CONCURRENT_CALLS: must be <= ZB_MAX_CONNECTIONS \(8 > 4\)/m);
  }, 60_000);

  describe('in the shipped process, set by the environment alone', () => {
    let sim: Simulator;
    let child: ChildSubgraph | undefined;
    const start = async (env: Record<string, string>) => {
      child = await startSubgraph({ ZB_BASE_URL: sim.url, ZB_USER: DEFAULT_SIMULATOR_USER, ZB_PASSWORD: DEFAULT_SIMULATOR_PASSWORD, ...env });
      const base = child.base;
      // ready = the service account holds its session: no start-up login competes for the call slots below
      await poll(() => fetch(`${base}/health/ready`).then((r) => r.ok, () => false), 'the subgraph is ready', 20_000, 50);
      sim.calls.clear();
      return base;
    };
    const gql = (base: string, query: string) =>
      fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }), signal: AbortSignal.timeout(20_000) }).then(
        (r) => r.json() as Promise<{ data?: unknown; errors?: Array<{ extensions?: { code?: string } }> }>,
      );

    beforeEach(async () => {
      sim = await startSimulator({ faults: { latencyMs: 15 }, sessionTimeoutMs: 0 });
    });
    afterEach(async () => {
      await child?.stop();
      child = undefined;
      await sim.close();
    }, 20_000);

    it('ZB_MAX_CONNECTIONS=4 alone: one request runs its 20 details 2 at a time; the ERP never sees more than 4 calls', async () => {
      const base = await start({ ZB_MAX_CONNECTIONS: '4' });
      const B = (page: number) => `{ afterSaleServices(page: ${page}, pageSize: 20) { items { id content } } }`;
      await gql(base, B(1));
      expect(sim.calls.count('detail')).toBe(20);
      expect(sim.calls.peak('detail')).toBe(2);
      sim.calls.clear();
      const pages = await Promise.all([1, 2, 3].map((page) => gql(base, B(page))));
      for (const page of pages) expect(page.errors).toBeUndefined();
      expect(sim.calls.count('detail')).toBe(60);
      expect(sim.calls.peak()).toBeLessThanOrEqual(4);
    }, 60_000);

    it('ZB_MAX_CONNECTIONS=2 alone: a third call waits in the process queue (ZB_QUEUE_TIMEOUT_MS, UPSTREAM_BUSY), not for a socket', async () => {
      // The derived call cap is the sockets: while 2 calls hold both sockets, a third waits in the limiter and gives up
      // after ZB_QUEUE_TIMEOUT_MS without reaching the ERP. (Calls above the sockets would wait inside the HTTP client
      // for a socket instead, until ZB_TIMEOUT_MS, and end as UPSTREAM_TIMEOUT.)
      const base = await start({ ZB_MAX_CONNECTIONS: '2', ZB_QUEUE_TIMEOUT_MS: '300', ZB_RETRIES: '0', ZB_TIMEOUT_MS: '5000' });
      const held = sim.faults.hold({ endpoint: 'detail', times: 2 });
      const first = gql(base, '{ afterSaleService(id: "1001") { title } }');
      const second = gql(base, '{ afterSaleService(id: "1002") { title } }');
      await until(() => held.held === 2, 'both sockets hold a detail call', 10_000);
      const third = await gql(base, '{ afterSaleService(id: "1003") { title } }');
      expect(third.errors?.map((e) => e.extensions?.code)).toEqual(['UPSTREAM_BUSY']);
      expect(sim.calls.count('detail')).toBe(2);
      held.release();
      for (const r of await Promise.all([first, second])) expect(r.errors).toBeUndefined();
    }, 60_000);
  });
});

describe('`NODE_ENV=prod` silently means development', () => {
  it.each(['prod', 'Production', 'PRODUCTION', 'staging', 'dev', ' production'])('rejects NODE_ENV=%j, listing the accepted values', (value) => {
    rejects({ NODE_ENV: value }, 'NODE_ENV', /development, production, test/);
  });

  it.each(['development', 'production', 'test'] as const)('accepts NODE_ENV=%s', (value) => {
    expect(loadConfig({ NODE_ENV: value }).NODE_ENV).toBe(value);
  });

  it('defaults to development', () => {
    expect(loadConfig({}).NODE_ENV).toBe('development');
  });
});

describe('Production switches do not switch (resolved in config)', () => {
  it.each([
    [{}, true, false],
    [{ NODE_ENV: 'test' }, true, false],
    [{ NODE_ENV: 'production' }, false, true],
    [{ NODE_ENV: 'production', ZB_INTROSPECTION: 'true', ZB_SESSION_HEADER_REQUIRED: 'false' }, true, false],
    [{ NODE_ENV: 'production', ZB_INTROSPECTION: '1', ZB_SESSION_HEADER_REQUIRED: 'off' }, true, false],
    [{ ZB_INTROSPECTION: 'false', ZB_SESSION_HEADER_REQUIRED: 'true' }, false, true],
    [{ NODE_ENV: 'production', ZB_INTROSPECTION: '', ZB_SESSION_HEADER_REQUIRED: '' }, false, true],
  ])('%j -> introspection %s, session header required %s', (env, introspection, headerRequired) => {
    const config = loadConfig(env);
    expect(config.ZB_INTROSPECTION).toBe(introspection);
    expect(config.ZB_SESSION_HEADER_REQUIRED).toBe(headerRequired);
  });

  it('rejects words that are not booleans', () => {
    rejects({ ZB_INTROSPECTION: 'maybe' }, 'ZB_INTROSPECTION');
    rejects({ ZB_SESSION_HEADER_REQUIRED: 'required' }, 'ZB_SESSION_HEADER_REQUIRED');
  });

  it('fleet settings: a Redis URL and prefix, and no fleet cap without Redis', () => {
    expect(loadConfig({}).ZB_REDIS_KEY_PREFIX).toBe('zb:');
    expect(loadConfig({ ZB_REDIS_URL: 'redis://127.0.0.1:6379/0', ZB_FLEET_MAX_CONCURRENT_CALLS: '6' }).ZB_FLEET_MAX_CONCURRENT_CALLS).toBe(6);
    rejects({ ZB_REDIS_URL: 'http://127.0.0.1:6379' }, 'ZB_REDIS_URL');
    rejects({ ZB_FLEET_MAX_CONCURRENT_CALLS: '6' }, 'ZB_FLEET_MAX_CONCURRENT_CALLS');
  });

  it('in production an ERP without a service account is valid (every request brings its session)', () => {
    expect(loadConfig({ NODE_ENV: 'production', ZB_BASE_URL: 'https://erp.example.com' }).ZB_SESSION_HEADER_REQUIRED).toBe(true);
    rejects({ NODE_ENV: 'production', ZB_BASE_URL: 'https://erp.example.com', ZB_SESSION_HEADER_REQUIRED: 'false' }, 'ZB_USER');
    rejects({ ZB_BASE_URL: 'https://erp.example.com' }, 'ZB_USER');
  });

  it('no other setting is left undefined when unset, except those that have no default by design', () => {
    // Guards the zod 4 trap: a setting must be either defaulted/resolved in config or deliberately optional.
    const config = loadConfig({});
    const unset = CONFIG_VARIABLES.filter((k) => config[k] === undefined);
    expect(unset).toEqual(['ZB_BASE_URL', 'ZB_USER', 'ZB_PASSWORD', 'ZB_FIELD_MAP', 'ZB_REDIS_URL', 'ZB_FLEET_MAX_CONCURRENT_CALLS']);
  });
});

describe('Live updates settings (ZB_FEED_*)', () => {
  it('defaults when unset', () => {
    expect(loadConfig({})).toMatchObject({
      ZB_FEED_POLL_MS: 5000,
      ZB_FEED_MAX_ROWS: 200,
      ZB_FEED_BUFFER_EVENTS: 256,
      ZB_FEED_BUFFER_BYTES: 262144,
      ZB_FEED_MAX_SUBSCRIPTIONS: 256,
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: 32,
      ZB_FEED_MAX_POLLERS: 64,
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: 8,
      ZB_FEED_WS_MAX_CONNECTIONS: 128,
      ZB_FEED_WS_INIT_TIMEOUT_MS: 3000,
      ZB_FEED_SSE_MAX_STREAMS: 128,
      // Callback mode off: every callback request refused.
      ZB_FEED_CALLBACK_URLS: [],
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: 256,
    });
  });

  it('reads each from the environment', () => {
    const config = loadConfig({
      ZB_FEED_POLL_MS: '250',
      ZB_FEED_MAX_ROWS: '40',
      ZB_FEED_BUFFER_EVENTS: '10',
      ZB_FEED_BUFFER_BYTES: '8192',
      ZB_FEED_MAX_SUBSCRIPTIONS: '3',
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: '2',
      ZB_FEED_MAX_POLLERS: '5',
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: '1',
      ZB_FEED_WS_MAX_CONNECTIONS: '7',
      ZB_FEED_WS_INIT_TIMEOUT_MS: '500',
      ZB_FEED_SSE_MAX_STREAMS: '9',
      ZB_FEED_CALLBACK_URLS: ' http://router-a:4000/callback , https://router.example/cb/ ',
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: '11',
    });
    expect(config).toMatchObject({
      ZB_FEED_POLL_MS: 250,
      ZB_FEED_MAX_ROWS: 40,
      ZB_FEED_BUFFER_EVENTS: 10,
      ZB_FEED_BUFFER_BYTES: 8192,
      ZB_FEED_MAX_SUBSCRIPTIONS: 3,
      ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: 2,
      ZB_FEED_MAX_POLLERS: 5,
      ZB_FEED_MAX_POLLERS_PER_IDENTITY: 1,
      ZB_FEED_WS_MAX_CONNECTIONS: 7,
      ZB_FEED_WS_INIT_TIMEOUT_MS: 500,
      ZB_FEED_SSE_MAX_STREAMS: 9,
      ZB_FEED_CALLBACK_URLS: ['http://router-a:4000/callback', 'https://router.example/cb/'],
      ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: 11,
    });
  });

  it('refuses what is not a plain number in range', () => {
    rejects({ ZB_FEED_POLL_MS: '5s' }, 'ZB_FEED_POLL_MS', /digits/);
    rejects({ ZB_FEED_POLL_MS: '5' }, 'ZB_FEED_POLL_MS');
    rejects({ ZB_FEED_MAX_ROWS: '0' }, 'ZB_FEED_MAX_ROWS');
    rejects({ ZB_FEED_BUFFER_BYTES: '1024' }, 'ZB_FEED_BUFFER_BYTES');
    rejects({ ZB_FEED_BUFFER_EVENTS: '-1' }, 'ZB_FEED_BUFFER_EVENTS');
    rejects({ ZB_FEED_MAX_SUBSCRIPTIONS: '1e3' }, 'ZB_FEED_MAX_SUBSCRIPTIONS');
    rejects({ ZB_FEED_WS_INIT_TIMEOUT_MS: '0' }, 'ZB_FEED_WS_INIT_TIMEOUT_MS');
    rejects({ ZB_FEED_SSE_MAX_STREAMS: '0' }, 'ZB_FEED_SSE_MAX_STREAMS');
    rejects({ ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS: '10k' }, 'ZB_FEED_CALLBACK_MAX_SUBSCRIPTIONS', /digits/);
  });

  it('ZB_FEED_CALLBACK_URLS takes only http(s) URL prefixes without credentials, query or fragment', () => {
    rejects({ ZB_FEED_CALLBACK_URLS: 'router:4000/callback' }, 'ZB_FEED_CALLBACK_URLS', /http\(s\) URLs/);
    rejects({ ZB_FEED_CALLBACK_URLS: 'http://ok/cb,ftp://router/cb' }, 'ZB_FEED_CALLBACK_URLS');
    rejects({ ZB_FEED_CALLBACK_URLS: 'http://user:secret@router/cb' }, 'ZB_FEED_CALLBACK_URLS', /entry 1 is not/);
    expect(() => loadConfig({ ZB_FEED_CALLBACK_URLS: 'http://ok/cb,http://user:secret@router/cb' })).toThrow(/^(?![\s\S]*secret)[\s\S]*entry 2 is not/);
    rejects({ ZB_FEED_CALLBACK_URLS: 'http://router/cb?x=1' }, 'ZB_FEED_CALLBACK_URLS');
    // Commas and blanks only: no prefix, callback mode off.
    expect(loadConfig({ ZB_FEED_CALLBACK_URLS: ' , ' }).ZB_FEED_CALLBACK_URLS).toEqual([]);
  });
});
