import type { ErpCall, Send, SessionSource } from '../src/erp/call';
import { loginCall } from '../src/erp/client';
import { readEnvelope } from '../src/erp/decode';
import { ErpAuthError, ErpError, ErpSessionError } from '../src/erp/errors';
import { ForwardedSession, ServiceAccountSession, withSession } from '../src/erp/layers/session';
import type { ErpReply } from '../src/erp/types';

/**
 * The session layer on its own, against an upstream scripted answer by answer: the token it puts in, the one relogin
 * after a refused session, and what surfaces when that is not enough.
 */
type Outcome = ErpReply | ErpError;

function upstream(script: Outcome[]) {
  const sent: ErpCall[] = [];
  const send: Send = (call) => {
    sent.push(call);
    const next = script.shift();
    if (!next) return Promise.reject(new Error('no more scripted answers'));
    return next instanceof ErpError ? Promise.reject(next) : Promise.resolve(next);
  };
  return { send, sent };
}

/** A session source that hands out T1, then T2, ... on each renewal, and remembers what it was told. */
function source(withRenew = true) {
  let n = 1;
  const log: string[] = [];
  const auth: SessionSource = {
    identity: 'test',
    token: () => Promise.resolve(`T${n}`),
    ...(withRenew ? { renew: (stale: string) => (log.push(`renew ${stale}`), Promise.resolve(`T${++n}`)) } : {}),
    refused: (token, e) => void log.push(`refused ${token} ${e.status}`),
  };
  return { auth, log };
}

const ok = (v = 'ok'): ErpReply => ({ header: { status: 0, message: v }, body: {} });
const kicked = () => new ErpSessionError('ERP session rejected (status 1): 您的账号已在其它移动设备上登录，请您重新登录。', 1);
const read = (auth?: SessionSource): ErpCall => ({ endpoint: 'list', path: '/list.asp', kind: 'read', cmdkey: 'refresh', datas: [], ...(auth ? { auth } : {}) });
const sessions = (sent: ErpCall[]) => sent.map((c) => c.session);

it('puts the source\'s token into the call', async () => {
  const up = upstream([ok()]);
  const { auth } = source();
  await expect(withSession().wrap(up.send)(read(auth))).resolves.toEqual(ok());
  expect(sessions(up.sent)).toEqual(['T1']);
});

it('lets logins and calls without a source through untouched', async () => {
  const up = upstream([ok('login'), ok('anonymous')]);
  const send = withSession().wrap(up.send);
  const login = loginCall({ user: 'u', password: 'p', serialnum: 's' }, '/login');
  await send(login);
  await send(read());
  expect(up.sent).toEqual([login, read()]);
});

it('one relogin on a session error: the call is sent once more with the fresh token', async () => {
  const up = upstream([kicked(), ok('again')]);
  const { auth, log } = source();
  await expect(withSession().wrap(up.send)(read(auth))).resolves.toEqual(ok('again'));
  expect(sessions(up.sent)).toEqual(['T1', 'T2']);
  expect(log).toEqual(['renew T1']);
});

it('a second refusal surfaces, with no loop', async () => {
  const second = kicked();
  const up = upstream([kicked(), second, ok()]);
  const { auth, log } = source();
  await expect(withSession().wrap(up.send)(read(auth))).rejects.toBe(second);
  expect(sessions(up.sent)).toEqual(['T1', 'T2']);
  expect(log).toEqual(['renew T1']);
});

it('a source that cannot renew (a forwarded user session) surfaces the first refusal', async () => {
  const first = kicked();
  const up = upstream([first, ok()]);
  await expect(withSession().wrap(up.send)(read(new ForwardedSession('USER-TOKEN', 'h')))).rejects.toBe(first);
  expect(sessions(up.sent)).toEqual(['USER-TOKEN']);
});

it('a refused account is told to the source, and not renewed', async () => {
  const frozen = new ErpAuthError('ERP refused the account (status 5): 用户被冻结。', 5);
  const up = upstream([frozen, ok()]);
  const { auth, log } = source();
  await expect(withSession().wrap(up.send)(read(auth))).rejects.toBe(frozen);
  expect(log).toEqual(['refused T1 5']);
  expect(up.sent).toHaveLength(1);
});

describe('with the service account, whose logins go down the same Send', () => {
  const loggedIn = (token: string) => readEnvelope({ header: { status: 0, message: '登录成功', session: token } });

  it('logs in with the login envelope (client.ts), relogs in once after a session error, then repeats the call', async () => {
    const up = upstream([loggedIn('S1'), kicked(), loggedIn('S2'), ok('listed')]);
    const service = new ServiceAccountSession(up.send, { user: 'svc', password: 'pw', serialnum: 'sg' }, '/login');
    const send = withSession().wrap(up.send);
    await expect(send({ ...read(service), requestId: 'r-1', deadline: 42 })).resolves.toEqual(ok('listed'));
    expect(up.sent.map((c) => `${c.endpoint} ${c.session ?? '-'}`)).toEqual(['login -', 'list S1', 'login -', 'list S2']);
    // The login is exactly the client's envelope, with the first waiting caller's request id and deadline.
    expect(up.sent[0]).toEqual(loginCall({ user: 'svc', password: 'pw', serialnum: 'sg' }, '/login', { requestId: 'r-1', deadline: 42 }));
    expect(up.sent[0]).toEqual({
      endpoint: 'login',
      path: '/login',
      kind: 'login',
      cmdkey: '',
      datas: [
        { id: 'user', val: 'txt:svc' },
        { id: 'password', val: 'txt:pw' },
        { id: 'serialnum', val: 'txt:sg' },
      ],
      requestId: 'r-1',
      deadline: 42,
    });
  });

  it('a session refused again right after the relogin surfaces as ERP_SESSION', async () => {
    const up = upstream([loggedIn('S1'), kicked(), loggedIn('S2'), kicked()]);
    const service = new ServiceAccountSession(up.send, { user: 'svc', password: 'pw', serialnum: 'sg' }, '/login');
    await expect(withSession().wrap(up.send)(read(service))).rejects.toBeInstanceOf(ErpSessionError);
    expect(up.sent.map((c) => c.endpoint)).toEqual(['login', 'list', 'login', 'list']);
  });
});
