import type { CallKind, ErpCall, Send } from '../src/erp/call';
import { ErpAbortedError, ErpConnectError, ErpError, ErpSessionError, ErpSocketError, ErpTimeoutError } from '../src/erp/errors';
import { retry, type RetryOptions } from '../src/erp/layers/retry';
import type { ErpReply } from '../src/erp/types';

/**
 * The retry layer on its own, against an upstream scripted attempt by attempt (as graphql/dataloader's tests assert
 * batches). Waits are 0 ms (random() = 0) or never happen: no test sleeps.
 */
type Outcome = ErpReply | ErpError;

function setUp(script: Outcome[], options: Partial<RetryOptions> = {}) {
  const attempts: ErpCall[] = [];
  const upstream: Send = (call) => {
    attempts.push(call);
    const next = script.shift();
    if (!next) return Promise.reject(new Error('no more scripted answers'));
    return next instanceof ErpError ? Promise.reject(next) : Promise.resolve(next);
  };
  const retries: Array<{ attempt: number; delayMs: number; code: string }> = [];
  const send = retry(
    { retries: 2, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0, ...options },
    { retry: (_call, attempt, delayMs, code) => retries.push({ attempt, delayMs, code }) },
  ).wrap(upstream);
  return { send, attempts, retries };
}

const ok: ErpReply = { header: { status: 0, message: 'ok' }, body: {} };
const call = (kind: CallKind, extra: Partial<ErpCall> = {}): ErpCall => ({
  endpoint: kind === 'write' ? 'process' : kind === 'login' ? 'login' : 'detail',
  path: '/page.asp',
  kind,
  cmdkey: '',
  datas: [],
  ...extra,
});
const socket = () => new ErpSocketError('ERP connection failed (ECONNRESET)');

it('retries a read on retryable errors until it succeeds, reporting each retry', async () => {
  const t = setUp([socket(), new ErpTimeoutError('ERP sent no reply headers in time', 'headers'), ok]);
  await expect(t.send(call('read'))).resolves.toBe(ok);
  expect(t.attempts).toHaveLength(3);
  expect(t.retries).toEqual([
    { attempt: 1, delayMs: 0, code: 'ERP_SOCKET' },
    { attempt: 2, delayMs: 0, code: 'ERP_TIMEOUT' },
  ]);
});

it('logins are retried like reads', async () => {
  const t = setUp([socket(), ok]);
  await expect(t.send(call('login'))).resolves.toBe(ok);
  expect(t.attempts).toHaveLength(2);
});

it('gives up after `retries` extra attempts: the last error surfaces', async () => {
  const last = socket();
  const t = setUp([socket(), socket(), last, ok]);
  await expect(t.send(call('read'))).rejects.toBe(last);
  expect(t.attempts).toHaveLength(3);
});

it('never retries a write, whatever the error', async () => {
  const error = socket();
  const t = setUp([error, ok]);
  await expect(t.send(call('write'))).rejects.toBe(error);
  expect(t.attempts).toHaveLength(1);
  expect(t.retries).toEqual([]);
});

it('does not retry what is not retryable (a refused session is the session layer\'s business)', async () => {
  const error = new ErpSessionError('ERP session rejected (status 2): 会话超时，请您重新登录。', 2);
  const t = setUp([error, ok]);
  await expect(t.send(call('read'))).rejects.toBe(error);
  expect(t.attempts).toHaveLength(1);
});

it('backs off exponentially up to the maximum, with full jitter', async () => {
  const t = setUp([socket(), socket(), socket(), socket(), ok], { retries: 4, baseDelayMs: 2, maxDelayMs: 5, random: () => 0.999 });
  await expect(t.send(call('read'))).resolves.toBe(ok);
  expect(t.retries.map((r) => r.delayMs)).toEqual([1, 3, 4, 4]);
});

it('never sleeps past the call\'s deadline: the error surfaces at once instead', async () => {
  const error = socket();
  // A 30 s wait (random() = 0.5 of 60 s) against a deadline 1 s away.
  const t = setUp([error, ok], { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.5 });
  const started = Date.now();
  await expect(t.send(call('read', { deadline: Date.now() + 1_000 }))).rejects.toBe(error);
  expect(Date.now() - started).toBeLessThan(1_000);
  expect(t.attempts).toHaveLength(1);
  expect(t.retries).toEqual([]);
});

it.each([
  ['may have', new ErpTimeoutError('ERP call exceeded 15000 ms', 'total'), true],
  ['cannot have', new ErpConnectError('cannot connect to the ERP (ECONNREFUSED)'), false],
])('an abort while waiting to retry gives ERP_ABORTED, which %s reached the ERP as the last attempt says', async (_says, error, reached) => {
  const caller = new AbortController();
  const t = setUp([error, ok], { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.5 });
  const answer = t.send(call('read', { signal: caller.signal }));
  await new Promise<void>((resolve) => setImmediate(resolve));
  // Waiting for its 30 s retry: the caller leaves now.
  expect(t.retries).toHaveLength(1);
  caller.abort();
  const aborted = (await answer.catch((e: unknown) => e)) as ErpAbortedError;
  expect(aborted).toBeInstanceOf(ErpAbortedError);
  expect(aborted).toEqual(expect.objectContaining({ code: 'ERP_ABORTED', phase: 'retrying', mayHaveReachedErp: reached, path: '/page.asp' }));
  expect(t.attempts).toHaveLength(1);
});

it('a caller that has already left is not retried: the attempt\'s own error surfaces', async () => {
  const caller = new AbortController();
  const error = socket();
  const upstream: Send = () => {
    caller.abort();
    return Promise.reject(error);
  };
  const send = retry({ retries: 2, baseDelayMs: 1, maxDelayMs: 1, random: () => 0 }).wrap(upstream);
  await expect(send(call('read', { signal: caller.signal }))).rejects.toBe(error);
});
