import { getEventListeners } from 'node:events';
import { Cancel, cancelOf } from '../src/erp/abort';
import { compose, type ErpCall, type Send } from '../src/erp/call';
import { ErpAbortedError } from '../src/erp/errors';
import { coalesce } from '../src/erp/layers/coalesce';
import { concurrencyLimit } from '../src/erp/layers/limiter';
import { retry } from '../src/erp/layers/retry';
import type { ErpReply } from '../src/erp/types';

/**
 * A request's abort signal and the ERP calls it makes (erp/abort.ts): the signal gets ONE abort listener however many
 * calls it makes and however many layers wait on them (coalesced waiters, the limiter's queue, the call on the wire),
 * and its abort still reaches each of them. No call gets an AbortController of its own (a coalesced flight's signal is
 * a plain Cancel).
 */
interface Pending {
  call: ErpCall;
  resolve(reply: ErpReply): void;
}

/** An upstream that holds every call until the test answers it, and fails it when its signal aborts (as the transport does). */
function upstream() {
  const pending: Pending[] = [];
  const send: Send = (call) =>
    new Promise<ErpReply>((resolve, reject) => {
      pending.push({ call, resolve });
      if (call.signal) cancelOf(call.signal).watch(() => reject(new ErpAbortedError({ phase: 'sent', path: call.path })));
    });
  return { send, pending };
}

const reply: ErpReply = { header: { status: 0, message: 'ok' }, body: {} };
const detail = (ord: string, signal: AbortSignal): ErpCall => ({ endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: ord }], signal });
const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('one abort listener per request', () => {
  it('40 calls of one request at once: one listener on its signal; no call on the wire carries an AbortSignal', async () => {
    const up = upstream();
    const retries = retry({ retries: 2, baseDelayMs: 1, maxDelayMs: 1 });
    const send = compose(coalesce(), retries, concurrencyLimit({ maxConcurrent: 10, maxWaitMs: 5000 }))(up.send);
    const request = new AbortController();
    const calls = Array.from({ length: 40 }, (_, i) => send(detail(String(i), request.signal)));
    await settle();
    expect(up.pending).toHaveLength(10);
    // Without the fan-out each of the 40 coalesced waiters and 30 queued calls would listen here.
    expect(listeners(request.signal)).toBe(1);
    // Each shared call has its own signal, a Cancel the client made: no AbortController per call.
    expect(up.pending.every((p) => p.call.signal instanceof Cancel)).toBe(true);
    expect(new Set(up.pending.map((p) => p.call.signal)).size).toBe(10);
    for (const p of up.pending.splice(0)) p.resolve(reply);
    await settle();
    expect(listeners(request.signal)).toBe(1);
    // The abort reaches the calls on the wire and the ones still queued.
    request.abort();
    const results = await Promise.allSettled(calls);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(30);
    expect(rejected.every((r) => r.reason instanceof ErpAbortedError)).toBe(true);
    expect(listeners(request.signal)).toBe(0);
    // The 10 on the wire when the abort came: their shared calls were abandoned too, as their last waiter left.
    expect(up.pending.map((p) => p.call.signal!.aborted)).toEqual(Array.from({ length: 10 }, () => true));
  });

  it('each request keeps its own fan-out: one request leaving aborts its calls only', async () => {
    const up = upstream();
    const send = coalesce().wrap(up.send);
    const [a, b] = [new AbortController(), new AbortController()];
    const ra = [send(detail('1', a.signal)), send(detail('2', a.signal))];
    const rb = send(detail('3', b.signal));
    a.abort();
    await expect(Promise.all(ra)).rejects.toBeInstanceOf(ErpAbortedError);
    up.pending.find((p) => p.call.datas[0]!.val === '3')!.resolve(reply);
    await expect(rb).resolves.toBe(reply);
    expect([listeners(a.signal), listeners(b.signal)]).toEqual([0, 1]);
  });
});

describe('cancelOf', () => {
  it('one Cancel per signal, one listener on it; its watchers run once on abort, an unwatched one never', () => {
    const request = new AbortController();
    const cancel = cancelOf(request.signal);
    expect(cancelOf(request.signal)).toBe(cancel);
    const heard: string[] = [];
    const gone = () => heard.push('gone');
    cancel.watch(() => heard.push('a'));
    cancel.watch(gone);
    cancel.watch(() => heard.push('b'));
    cancel.unwatch(gone);
    expect(listeners(request.signal)).toBe(1);
    const reason = new Error('client left');
    request.abort(reason);
    request.abort();
    expect(heard).toEqual(['a', 'b']);
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe(reason);
    expect(listeners(request.signal)).toBe(0);
  });

  it('a signal already aborted gives an aborted Cancel and gets no listener; a Cancel is its own', () => {
    const gone = AbortSignal.abort();
    expect(cancelOf(gone).aborted).toBe(true);
    expect(listeners(gone)).toBe(0);
    const own = new Cancel();
    expect(cancelOf(own)).toBe(own);
  });
});
