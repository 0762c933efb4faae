import type { ErpCall, Send } from '../src/erp/call';
import { ErpAbortedError, ErpBusyError } from '../src/erp/errors';
import { concurrencyLimit } from '../src/erp/layers/limiter';
import type { ErpReply } from '../src/erp/types';

/**
 * The process-wide call bound on its own, against an upstream the test answers call by call: who reaches the ERP,
 * in which order, and what a caller that stops waiting gets.
 */
interface Pending {
  call: ErpCall;
  resolve(reply: ErpReply): void;
}

function setUp(maxConcurrent: number, maxWaitMs: number) {
  const pending: Pending[] = [];
  const reached: string[] = [];
  const upstream: Send = (call) =>
    new Promise<ErpReply>((resolve) => {
      reached.push(ord(call));
      pending.push({ call, resolve });
    });
  const queue: Array<[number, number]> = [];
  const send = concurrencyLimit({ maxConcurrent, maxWaitMs }, { queue: (active, waiting) => queue.push([active, waiting]) }).wrap(upstream);
  return { send, pending, reached, queue };
}

const ord = (call: ErpCall) => String(call.datas[0]?.val);
const reply = (v: string): ErpReply => ({ header: { status: 0, message: 'ok' }, body: { v } });
const detail = (o: string, extra: Partial<ErpCall> = {}): ErpCall => ({ endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: o }], ...extra });
// A queued call starts a few microtasks after a slot frees: one macrotask later it has.
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => jest.useRealTimers());

it('runs at most maxConcurrent calls at once, the others in arrival order as slots free', async () => {
  const t = setUp(2, 60_000);
  const answers = ['1', '2', '3', '4'].map((o) => t.send(detail(o)));
  await settle();
  expect(t.reached).toEqual(['1', '2']);
  t.pending.shift()!.resolve(reply('1'));
  await settle();
  expect(t.reached).toEqual(['1', '2', '3']);
  for (const p of t.pending.splice(0)) p.resolve(reply(ord(p.call)));
  await settle();
  t.pending.shift()!.resolve(reply('4'));
  await expect(Promise.all(answers)).resolves.toEqual(['1', '2', '3', '4'].map(reply));
  // The slot is given back just after the answer: the last report says so.
  await settle();
  expect(t.queue.at(-1)).toEqual([0, 0]);
});

it('an abandoned queue slot: a caller that gave up while queued leaves its place empty and never reaches the ERP', async () => {
  const t = setUp(1, 60_000);
  const first = t.send(detail('1'));
  const leaver = new AbortController();
  const gone = t.send(detail('2', { signal: leaver.signal }));
  const third = t.send(detail('3'));
  await settle();
  expect(t.reached).toEqual(['1']);

  leaver.abort();
  const error = (await gone.catch((e: unknown) => e)) as ErpAbortedError;
  expect(error).toBeInstanceOf(ErpAbortedError);
  expect(error).toEqual(expect.objectContaining({ code: 'ERP_ABORTED', phase: 'queued', mayHaveReachedErp: false, path: '/add.asp' }));

  t.pending.shift()!.resolve(reply('1'));
  await expect(first).resolves.toEqual(reply('1'));
  await settle();
  // The empty place was skipped: the third caller is next, and the second never reached the ERP.
  expect(t.reached).toEqual(['1', '3']);
  t.pending.shift()!.resolve(reply('3'));
  await expect(third).resolves.toEqual(reply('3'));
  await settle();
  expect(t.reached).toEqual(['1', '3']);
  expect(t.queue.at(-1)).toEqual([0, 0]);
});

it('the wait bound gives ERP_BUSY, and the busy caller\'s place stays empty too', async () => {
  // Only the wait timer is faked; promise and immediate scheduling stay real.
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
  const t = setUp(1, 5_000);
  const first = t.send(detail('1'));
  const waiting = t.send(detail('2'));
  await settle();
  jest.advanceTimersByTime(4_999);
  await settle();
  expect(t.reached).toEqual(['1']);

  jest.advanceTimersByTime(1);
  const error = (await waiting.catch((e: unknown) => e)) as ErpBusyError;
  expect(error).toBeInstanceOf(ErpBusyError);
  expect(error).toEqual(expect.objectContaining({ code: 'ERP_BUSY', path: '/add.asp', mayHaveReachedErp: false }));
  expect(error.message).toBe('no ERP call slot within 5000 ms');

  t.pending.shift()!.resolve(reply('1'));
  await first;
  await settle();
  expect(t.reached).toEqual(['1']);
  expect(t.queue.at(-1)).toEqual([0, 0]);
});

it('a call that got its slot is no longer bound by the wait: it runs as long as the ERP takes', async () => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
  const t = setUp(1, 100);
  const call = t.send(detail('1'));
  await settle();
  jest.advanceTimersByTime(10_000);
  t.pending.shift()!.resolve(reply('slow'));
  await expect(call).resolves.toEqual(reply('slow'));
});
