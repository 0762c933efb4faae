import type { ErpCall, Send } from '../src/erp/call';
import { MemoryReadCacheStore, readCache } from '../src/erp/layers/cache';
import type { ErpReply } from '../src/erp/types';

/**
 * The read cache's stale-while-revalidate window (ZB_CACHE_STALE_MS), on the layer itself with a hand-driven clock
 * and an upstream whose answers the test releases one by one, so every step is deterministic.
 */
const TTL = 1000;
const STALE = 5000;

interface Pending {
  call: ErpCall;
  resolve(reply: ErpReply): void;
  reject(err: Error): void;
}

function upstream() {
  const pending: Pending[] = [];
  const send: Send = (call) => new Promise<ErpReply>((resolve, reject) => pending.push({ call, resolve, reject }));
  return { send, pending };
}

const reply = (v: string): ErpReply => ({ header: { status: 0, message: '' }, body: { v } });
const detail = (ord: string, extra: Partial<ErpCall> = {}): ErpCall => ({
  endpoint: 'detail',
  path: '/add.asp',
  kind: 'read',
  cmdkey: '',
  datas: [{ id: 'ord', val: ord }],
  auth: { identity: 'svc', token: () => Promise.resolve('t') },
  ...extra,
});
// Lets a released upstream answer reach the cache's `.then` before the test looks again.
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setUp() {
  let now = 1_000_000;
  const events: string[] = [];
  const cache = readCache({ ttlMs: TTL, staleMs: STALE, now: () => now }, { cache: (_call, result) => events.push(result) }, new MemoryReadCacheStore(100, () => now));
  const up = upstream();
  const send = cache.wrap(up.send);
  // Fills the cache with answer `v` for ord 1 at the current time.
  const prime = async (v: string) => {
    const first = send(detail('1'));
    up.pending.shift()!.resolve(reply(v));
    await first;
  };
  return { cache, up, send, events, prime, advance: (ms: number) => (now += ms) };
}

it('serves a fresh entry without calling upstream', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL - 1);
  await expect(t.send(detail('1'))).resolves.toEqual(reply('v1'));
  expect(t.up.pending).toHaveLength(0);
  expect(t.events).toEqual(['miss', 'hit']);
});

it('within the stale window answers at once with the old reply and refreshes once in the background', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL + 1);
  // Three readers in the stale window: all answered from the entry, one refresh between them.
  const answers = await Promise.all([t.send(detail('1')), t.send(detail('1')), t.send(detail('1'))]);
  expect(answers).toEqual([reply('v1'), reply('v1'), reply('v1')]);
  expect(t.up.pending).toHaveLength(1);
  expect(t.events).toEqual(['miss', 'stale', 'stale', 'stale']);

  t.up.pending.shift()!.resolve(reply('v2'));
  await settle();
  // The refreshed answer is fresh again for a whole TTL.
  t.advance(TTL - 1);
  await expect(t.send(detail('1'))).resolves.toEqual(reply('v2'));
  expect(t.up.pending).toHaveLength(0);
  expect(t.events.at(-1)).toBe('hit');
});

it('the background refresh carries no caller signal: a reader that gives up does not cancel it', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL + 1);
  const aborted = AbortSignal.abort();
  await expect(t.send(detail('1', { signal: aborted }))).resolves.toEqual(reply('v1'));
  expect(t.up.pending).toHaveLength(1);
  expect(t.up.pending[0]!.call.signal).toBeUndefined();
});

it('a failed refresh keeps the stale entry, and the next stale read tries again', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL + 1);
  await t.send(detail('1'));
  t.up.pending.shift()!.reject(new Error('ERP down'));
  await settle();
  await expect(t.send(detail('1'))).resolves.toEqual(reply('v1'));
  expect(t.up.pending).toHaveLength(1);
});

it('past the stale window it is a miss: the reader waits for upstream', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL + STALE + 1);
  const read = t.send(detail('1'));
  expect(t.up.pending).toHaveLength(1);
  t.up.pending.shift()!.resolve(reply('v2'));
  await expect(read).resolves.toEqual(reply('v2'));
  expect(t.events).toEqual(['miss', 'miss']);
});

it('a refresh that started before a save is not stored after it', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL + 1);
  await t.send(detail('1'));
  await t.cache.invalidateService('1');
  // The answer read before the save arrives after it: storing it would serve pre-save data as fresh.
  t.up.pending.shift()!.resolve(reply('before-save'));
  await settle();
  const read = t.send(detail('1'));
  expect(t.up.pending).toHaveLength(1);
  t.up.pending.shift()!.resolve(reply('after-save'));
  await expect(read).resolves.toEqual(reply('after-save'));
});

it('keeps identities apart in the stale window too', async () => {
  const t = setUp();
  await t.prime('v1');
  t.advance(TTL + 1);
  const other = t.send(detail('1', { auth: { identity: 'user:42', token: () => Promise.resolve('u') } }));
  // Another identity's read is a miss that waits for upstream, never the service account's stale answer.
  expect(t.up.pending).toHaveLength(1);
  expect(t.up.pending[0]!.call.auth!.identity).toBe('user:42');
  t.up.pending.shift()!.resolve(reply('theirs'));
  await expect(other).resolves.toEqual(reply('theirs'));
});
