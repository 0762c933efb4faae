import { getEventListeners } from 'node:events';
import { compose, type ErpCall, type Send } from '../src/erp/call';
import { ErpAbortedError } from '../src/erp/errors';
import { coalesce } from '../src/erp/layers/coalesce';
import { concurrencyLimit } from '../src/erp/layers/limiter';
import { callSignals } from '../src/erp/layers/signal';
import type { ErpReply } from '../src/erp/types';

/**
 * The per-call signal layer on its own and above the layers that listen (coalescing's waiters, the limiter's queue):
 * a request's signal gets one abort listener however many calls it makes, and its abort still reaches each of them.
 */
interface Pending {
  call: ErpCall;
  resolve(reply: ErpReply): void;
}

/** An upstream that holds every call until the test answers it, and fails it when its own signal aborts. */
function upstream() {
  const pending: Pending[] = [];
  const send: Send = (call) =>
    new Promise<ErpReply>((resolve, reject) => {
      pending.push({ call, resolve });
      call.signal?.addEventListener('abort', () => reject(new ErpAbortedError({ phase: 'sent', path: call.path })), { once: true });
    });
  return { send, pending };
}

const reply: ErpReply = { header: { status: 0, message: 'ok' }, body: {} };
const detail = (ord: string, signal: AbortSignal): ErpCall => ({ endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: ord }], signal });
const listeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

describe('callSignals', () => {
  it('40 calls of one request at once: one listener on its signal, one own signal per call', async () => {
    const up = upstream();
    const send = compose(callSignals(), coalesce(), concurrencyLimit({ maxConcurrent: 10, maxWaitMs: 5000 }))(up.send);
    const request = new AbortController();
    const calls = Array.from({ length: 40 }, (_, i) => send(detail(String(i), request.signal)));
    await new Promise((resolve) => setImmediate(resolve));
    expect(up.pending).toHaveLength(10);
    // Without the layer each of the 40 coalesced waiters would listen here.
    expect(listeners(request.signal)).toBe(1);
    const own = new Set(up.pending.map((p) => p.call.signal));
    expect(own.size).toBe(10);
    expect(own.has(request.signal)).toBe(false);
    for (const p of up.pending.splice(0)) p.resolve(reply);
    await new Promise((resolve) => setImmediate(resolve));
    expect(listeners(request.signal)).toBe(1);
    // The abort reaches the calls on the wire and the ones still queued.
    request.abort();
    const results = await Promise.allSettled(calls);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof ErpAbortedError)).toBe(true);
    expect(listeners(request.signal)).toBe(0);
  });

  it('a call without a signal, or with one already aborted, passes as it is', async () => {
    const seen: ErpCall[] = [];
    const send = callSignals().wrap((call) => {
      seen.push(call);
      return Promise.resolve(reply);
    });
    const plain: ErpCall = { endpoint: 'list', path: '/list.asp', kind: 'read', cmdkey: 'refresh', datas: [] };
    await send(plain);
    const gone = AbortSignal.abort();
    await send(detail('1', gone));
    expect(seen[0]).toBe(plain);
    expect(seen[1]!.signal).toBe(gone);
  });

  it('each request keeps its own fan-out: one request leaving aborts its calls only', async () => {
    const up = upstream();
    const send = callSignals().wrap(up.send);
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
