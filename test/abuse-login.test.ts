import { compose, type ErpCall, type Send } from '../src/erp/call';
import { readEnvelope } from '../src/erp/decode';
import { ErpAuthError, ErpConnectError, ErpHttpStatusError, ErpTimeoutError } from '../src/erp/errors';
import { ServiceAccountSession, withSession, type ServiceSessionOptions } from '../src/erp/layers/session';
import type { ErpObserver, LoginDetail } from '../src/erp/observer';
import type { ErpReply } from '../src/erp/types';
import { postJson, SIM_PASSWORD, SIM_USER, startStack, type TestStack } from './helpers';

/**
 * Issue: "A wrong service password locks the account: every query and readiness probe tries to log in again, with no
 * backoff; the ERP then demands a captcha, and the service stays down after the password is fixed. The ERP's reason
 * text is dropped from the log." The service account's login discipline, first on the session itself against a
 * scripted ERP and a hand-driven clock, then over HTTP against the simulator.
 */
const BASE = 60_000;
const MAX = 3_600_000;
const PASSWORD = 'not-the-Password-9';
const WRONG = '用户名或密码错误。';
const CAPTCHA = '请输入正确的验证码。';

/** What the ERP answers a login with, decoded by the client's own decoder (so the error classes are the real ones). */
type Answer = () => Promise<ErpReply>;
const refuse = (status: number, message: string, captcha = false): Answer => () =>
  Promise.resolve().then(() =>
    readEnvelope({ header: { status, message }, body: { model: 'init', action: 'fail', fail: { message, newrndcode: captcha ? 'c.png' : '', newappurl: '' } } }),
  );
const accept = (token: string): Answer => () => Promise.resolve(readEnvelope({ header: { status: 0, message: '登录成功', session: token }, body: { model: 'init', action: 'succ' } }));
const fail = (e: Error): Answer => () => Promise.reject(e);

interface Held {
  resolve(reply: ErpReply): void;
  reject(e: Error): void;
}

function setUp(options: ServiceSessionOptions = {}) {
  let now = 1_000_000;
  let answer: Answer = refuse(3, WRONG);
  const sent: ErpCall[] = [];
  const held: Held[] = [];
  let hold = false;
  const send: Send = (call) => {
    sent.push(call);
    if (hold) return new Promise<ErpReply>((resolve, reject) => held.push({ resolve, reject }));
    return answer();
  };
  const logins: Array<{ identity: string; outcome: string; detail?: LoginDetail }> = [];
  const observer: ErpObserver = { login: (identity, outcome, detail) => logins.push({ identity, outcome, ...(detail ? { detail } : {}) }) };
  const session = new ServiceAccountSession(send, { user: 'svc', password: PASSWORD, serialnum: 'test' }, '/login', observer, {
    backoffMs: BASE,
    backoffMaxMs: MAX,
    now: () => now,
    ...options,
  });
  return {
    session,
    sent,
    logins,
    held,
    loginsSent: () => sent.filter((c) => c.kind === 'login').length,
    answer: (a: Answer) => (answer = a),
    hold: (on: boolean) => (hold = on),
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

const read: ErpCall = { endpoint: 'list', path: '/list.asp', kind: 'read', cmdkey: 'refresh', datas: [] };
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ServiceAccountSession: login backoff after the ERP refuses the account', () => {
  it('a wrong password starts a backoff: every caller fails fast with ErpAuthError and no login reaches the ERP', async () => {
    const t = setUp();
    await expect(t.session.token(read)).rejects.toEqual(expect.objectContaining({ code: 'ERP_AUTH', status: 3 }));
    expect(t.loginsSent()).toBe(1);
    expect(t.session.status()).toEqual({ state: 'backoff', reason: WRONG, retryAt: t.now() + BASE });

    // 50 queries, relogins and readiness probes during the window: none of them logs in.
    const callers = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? t.session.renew('stale', read) : i % 3 === 1 ? t.session.token(read) : t.session.login()));
    t.session.ensureLogin();
    const results = await Promise.allSettled(callers);
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof ErpAuthError && r.reason.status === 3)).toBe(true);
    t.advance(BASE - 1);
    await expect(t.session.token(read)).rejects.toBeInstanceOf(ErpAuthError);
    expect(t.loginsSent()).toBe(1);
  });

  it('the backoff doubles per refusal in a row up to the maximum, with one login per window', async () => {
    const t = setUp();
    await t.session.login().catch(() => undefined);
    const pauses: number[] = [];
    for (let i = 0; i < 8; i++) {
      t.advance(t.session.status().retryAt! - t.now());
      // Concurrent callers at the end of a window share one login (single-flight).
      await Promise.allSettled([t.session.token(read), t.session.token(read), t.session.login()]);
      pauses.push(t.session.status().retryAt! - t.now());
    }
    expect(pauses).toEqual([2 * BASE, 4 * BASE, 8 * BASE, 16 * BASE, 32 * BASE, MAX, MAX, MAX]);
    expect(t.loginsSent()).toBe(9);
  });

  it('the captcha is never triggered within one backoff window, and a captcha demand goes straight to the maximum', async () => {
    const t = setUp();
    // The simulator (like the ERP) demands a captcha after more than 3 failed logins; one window allows one.
    await t.session.login().catch(() => undefined);
    for (let i = 0; i < 100; i++) await t.session.token(read).catch(() => undefined);
    expect(t.loginsSent()).toBe(1);

    const c = setUp();
    c.answer(refuse(3, CAPTCHA, true));
    await expect(c.session.login()).rejects.toBeInstanceOf(ErpAuthError);
    expect(c.session.status()).toEqual({ state: 'backoff', reason: CAPTCHA, retryAt: c.now() + MAX });
  });

  it.each([
    [4, '用户名无效。'],
    [5, '用户被冻结。'],
  ])('status %i at login (%s) is a refusal with the same backoff', async (status, text) => {
    const t = setUp();
    t.answer(refuse(status, text));
    await expect(t.session.login()).rejects.toEqual(expect.objectContaining({ code: 'ERP_AUTH', status }));
    await expect(t.session.token(read)).rejects.toEqual(expect.objectContaining({ code: 'ERP_AUTH', status }));
    expect(t.session.status()).toEqual({ state: 'backoff', reason: text, retryAt: t.now() + BASE });
    expect(t.loginsSent()).toBe(1);
  });

  it('a successful login resets the backoff', async () => {
    const t = setUp();
    await t.session.login().catch(() => undefined);
    t.advance(BASE);
    await t.session.login().catch(() => undefined);
    expect(t.session.status().retryAt! - t.now()).toBe(2 * BASE);
    t.advance(2 * BASE);
    t.answer(accept('TOKEN-1'));
    await expect(t.session.token(read)).resolves.toBe('TOKEN-1');
    expect(t.session.status()).toEqual({ state: 'ready' });
    // The password changes again: the next refusal starts from the base pause, not where the last series ended.
    t.answer(refuse(3, WRONG));
    await expect(t.session.renew('TOKEN-1', read)).rejects.toBeInstanceOf(ErpAuthError);
    expect(t.session.status().retryAt! - t.now()).toBe(BASE);
  });

  it.each([
    ['network', new ErpConnectError('cannot connect to the ERP (ECONNREFUSED)')],
    ['timeout', new ErpTimeoutError('ERP sent no reply headers in time', 'headers')],
    ['5xx', new ErpHttpStatusError(502)],
  ])('a transient failure (%s) is not a refusal: no backoff, and concurrent callers still share one login', async (_kind, error) => {
    const t = setUp();
    t.hold(true);
    const callers = Array.from({ length: 20 }, () => t.session.token(read));
    expect(t.loginsSent()).toBe(1);
    expect(t.session.status().state).toBe('logging-in');
    t.held.shift()!.reject(error);
    const results = await Promise.allSettled(callers);
    expect(results.every((r) => r.status === 'rejected' && r.reason === error)).toBe(true);
    expect(t.session.status()).toEqual({ state: 'not-logged-in', reason: error.message });
    // The next caller may try again at once.
    t.hold(false);
    t.answer(accept('TOKEN-2'));
    await expect(t.session.token(read)).resolves.toBe('TOKEN-2');
    expect(t.loginsSent()).toBe(2);
  });

  it('reports the ERP reason to the observer, never the password (even if the ERP echoes it)', async () => {
    const t = setUp();
    t.answer(refuse(3, `密码 ${PASSWORD} 错误`));
    const err = (await t.session.login().catch((e: unknown) => e)) as ErpAuthError;
    expect(t.logins).toEqual([{ identity: 'service:svc', outcome: 'ERP_AUTH', detail: { reason: '密码 *** 错误', retryAt: t.now() + BASE } }]);
    expect(t.session.status().reason).toBe('密码 *** 错误');
    const failFast = (await t.session.token(read).catch((e: unknown) => e)) as ErpAuthError;
    for (const text of [JSON.stringify(t.logins), err.message, failFast.message, JSON.stringify(t.session.status())]) expect(text).not.toContain(PASSWORD);
  });

  it('an account refused on a read (frozen, status 5) stops the session using it: the next callers fail fast', async () => {
    const t = setUp();
    t.answer(accept('TOKEN-3'));
    await t.session.login();
    const erp: Send = (call) => (call.kind === 'login' ? Promise.reject(new Error('no login expected')) : refuse(5, '用户被冻结。')());
    const withAuth = compose(withSession())(erp);
    await expect(withAuth({ ...read, auth: t.session })).rejects.toEqual(expect.objectContaining({ status: 5 }));
    expect(t.session.status()).toEqual({ state: 'backoff', reason: '用户被冻结。', retryAt: t.now() + BASE });
    await expect(withAuth({ ...read, auth: t.session })).rejects.toBeInstanceOf(ErpAuthError);
    expect(t.loginsSent()).toBe(1);
  });
});

describe('ServiceAccountSession: readiness (status, ensureLogin) never logs in nor waits', () => {
  it('ensureLogin starts one background login only when none runs and no backoff holds; status answers at once', async () => {
    const t = setUp();
    expect(t.session.status()).toEqual({ state: 'not-logged-in' });
    t.hold(true);
    t.session.ensureLogin();
    t.session.ensureLogin();
    expect(t.loginsSent()).toBe(1);
    expect(t.session.status()).toEqual({ state: 'logging-in' });
    // A stalled login: status still answers synchronously, and probes do not pile up logins behind it.
    for (let i = 0; i < 10; i++) t.session.ensureLogin();
    expect(t.loginsSent()).toBe(1);
    t.held.shift()!.resolve(await accept('TOKEN-4')());
    await settle();
    expect(t.session.status()).toEqual({ state: 'ready' });
    t.session.ensureLogin();
    expect(t.loginsSent()).toBe(1);
  });

  it('a failed background login is swallowed, reported, and leaves the backoff in charge', async () => {
    const t = setUp();
    t.session.ensureLogin();
    await settle();
    expect(t.logins.map((l) => l.outcome)).toEqual(['ERP_AUTH']);
    expect(t.session.status()).toEqual({ state: 'backoff', reason: WRONG, retryAt: t.now() + BASE });
    for (let i = 0; i < 10; i++) t.session.ensureLogin();
    expect(t.loginsSent()).toBe(1);
    t.advance(BASE);
    expect(t.session.status()).toEqual({ state: 'not-logged-in', reason: WRONG });
    t.answer(fail(new ErpConnectError('cannot connect to the ERP (ECONNREFUSED)')));
    t.session.ensureLogin();
    await settle();
    expect(t.loginsSent()).toBe(2);
    expect(t.logins.map((l) => l.outcome)).toEqual(['ERP_AUTH', 'ERP_CONNECT']);
    expect(t.session.status()).toEqual({ state: 'not-logged-in', reason: 'cannot connect to the ERP (ECONNREFUSED)' });
  });
});

describe('over HTTP: a subgraph configured with a wrong service password', () => {
  let t: TestStack;
  const wrong = 'wrong-Secret-pw-42';
  beforeAll(async () => {
    t = await startStack({ credentials: { user: SIM_USER, password: wrong, serialnum: 'abuse-test' } });
  });
  afterAll(() => t.close());

  it('N queries and readiness probes during the backoff make no login call; the captcha is never triggered', async () => {
    expect(t.app.stack.serviceSession!.status()).toEqual(expect.objectContaining({ state: 'backoff', reason: WRONG }));
    const queries = Array.from({ length: 30 }, () => t.gql('{ afterSaleServices(pageSize: 3) { items { id } } }'));
    const probes = Array.from({ length: 10 }, () => fetch(t.app.url.replace('/graphql', '/health/ready')));
    const answers = await Promise.all(queries);
    const ready = await Promise.all(probes);
    expect(answers.every((r) => r.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED')).toBe(true);
    expect(ready.every((r) => r.status === 503)).toBe(true);
    expect(t.sim.calls.count('login')).toBeLessThanOrEqual(1);
    expect(t.sim.calls.count()).toBe(0);
    // Over the whole life of the process: the start-up login and nothing else.
    const metrics = await (await fetch(t.app.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).toMatch(/^zb_erp_logins_total\{outcome="ERP_AUTH"\} 1$/m);
    // The ERP did not lock the account: with the password fixed, a login needs no captcha.
    const fixed = await postJson(`${t.sim.url}/webapi/v3/ov1/login`, {
      datas: [{ id: 'user', val: `txt:${SIM_USER}` }, { id: 'password', val: `txt:${SIM_PASSWORD}` }, { id: 'serialnum', val: 'txt:abuse-fixed' }],
    });
    expect(fixed.json).toEqual(expect.objectContaining({ header: expect.objectContaining({ status: 0 }) }));
  });

  it('logs the ERP reason for the refusal, and never the password', () => {
    const refused = t.logs.lines.filter((l) => l.includes('"msg":"erp login refused; logins paused"'));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain(WRONG);
    expect(refused[0]).toContain('"retryAt"');
    expect(t.logs.text).not.toContain(wrong);
  });
});
