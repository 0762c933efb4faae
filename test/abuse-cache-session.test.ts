import type { ErpCall, Send, SessionSource } from '../src/erp/call';
import { ErpAuthError, ErpConnectError, ErpSessionError } from '../src/erp/errors';
import { entryBytes, MemoryReadCacheStore, readCache, type CachedReply } from '../src/erp/layers/cache';
import type { ErpReply } from '../src/erp/types';
import { postJson, startStack, until, type TestStack } from './helpers';

/**
 * Issue: "A kicked user keeps getting cached data (with ZB_CACHE_STALE_MS) because a failed background refresh with a
 * session error does not evict." Plus the read cache's bound in bytes (ZB_CACHE_MAX_BYTES), not only in entries.
 */
const TTL = 1000;
const STALE = 60_000;
const reply = (v: string): ErpReply => ({ header: { status: 0, message: 'ok' }, body: { v } });
const who = (identity: string): SessionSource => ({ identity, token: () => Promise.resolve('t') });
const detail = (ord: string, auth: SessionSource): ErpCall => ({ endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: ord }], auth });
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setUp() {
  let now = 1_000_000;
  const pending: Array<{ call: ErpCall; resolve(r: ErpReply): void; reject(e: Error): void }> = [];
  const dropped: string[] = [];
  const cache = readCache(
    { ttlMs: TTL, staleMs: STALE, now: () => now },
    { cacheDropped: (call, code) => dropped.push(`${call.auth?.identity} ${code}`) },
    new MemoryReadCacheStore(100, { now: () => now }),
  );
  const upstream: Send = (call) => new Promise<ErpReply>((resolve, reject) => pending.push({ call, resolve, reject }));
  const send = cache.wrap(upstream);
  const prime = async (call: ErpCall, v: string) => {
    const first = send(call);
    pending.shift()!.resolve(reply(v));
    await first;
  };
  return { send, pending, dropped, prime, advance: (ms: number) => (now += ms) };
}

describe('a background refresh refused by the ERP drops the identity\'s cached answers', () => {
  it.each([
    ['ErpSessionError (kicked, status 1)', new ErpSessionError('ERP session rejected (status 1): 您的账号已在其它移动设备上登录，请您重新登录。', 1)],
    ['ErpAuthError (frozen, status 5)', new ErpAuthError('ERP refused the account (status 5): 用户被冻结。', 5)],
  ])('%s: the stale entry is dropped and the next read goes to the ERP', async (_name, error) => {
    const t = setUp();
    const user = who('user:kicked');
    await t.prime(detail('1', user), 'v1');
    await t.prime(detail('2', user), 'v2');
    await t.prime(detail('1', who('user:other')), 'other');
    t.advance(TTL + 1);
    // The stale read still answers (the ERP has not said anything yet) and starts the refresh, which is refused.
    await expect(t.send(detail('1', user))).resolves.toEqual(reply('v1'));
    t.pending.shift()!.reject(error);
    await settle();
    expect(t.dropped).toEqual([`user:kicked ${error.code}`]);
    // Both of that identity's entries are gone: each next read waits for the ERP, which refuses it.
    for (const ord of ['1', '2']) {
      const next = t.send(detail(ord, user));
      expect(t.pending).toHaveLength(1);
      t.pending.shift()!.reject(error);
      await expect(next).rejects.toBe(error);
    }
    // Another identity's answer is untouched.
    await expect(t.send(detail('1', who('user:other')))).resolves.toEqual(reply('other'));
  });

  it('a transient refresh failure keeps the stale entry (the ERP said nothing about the session)', async () => {
    const t = setUp();
    const user = who('user:fine');
    await t.prime(detail('1', user), 'v1');
    t.advance(TTL + 1);
    await t.send(detail('1', user));
    t.pending.shift()!.reject(new ErpConnectError('cannot connect to the ERP (ECONNREFUSED)'));
    await settle();
    expect(t.dropped).toEqual([]);
    await expect(t.send(detail('1', user))).resolves.toEqual(reply('v1'));
  });

  it('a read that misses and is refused drops that identity\'s other answers too', async () => {
    const t = setUp();
    const user = who('user:kicked');
    await t.prime(detail('1', user), 'v1');
    const miss = t.send(detail('2', user));
    t.pending.shift()!.reject(new ErpSessionError('ERP session rejected (status 2): 会话超时，请您重新登录。', 2));
    await expect(miss).rejects.toBeInstanceOf(ErpSessionError);
    // Still within the TTL, yet ord 1 is no longer served from the cache.
    const again = t.send(detail('1', user));
    expect(t.pending).toHaveLength(1);
    t.pending.shift()!.resolve(reply('fresh'));
    await expect(again).resolves.toEqual(reply('fresh'));
  });
});

describe('over HTTP: a forwarded user session revoked by the ERP while its answer is cached', () => {
  let t: TestStack;
  beforeAll(async () => {
    // A 1 ms TTL: the entry is stale from the next millisecond on, and served stale for a minute.
    t = await startStack({ env: { ZB_CACHE_TTL_MS: '1', ZB_CACHE_STALE_MS: '60000' } });
  });
  afterAll(() => t.close());

  it('the stale read triggers a refresh that fails, the entry is dropped, and the next read is UNAUTHENTICATED', async () => {
    const login = await postJson(`${t.sim.url}/webapi/v3/ov1/login`, {
      datas: [{ id: 'user', val: 'txt:zhangwei' }, { id: 'password', val: 'txt:zhangwei-pass' }, { id: 'serialnum', val: 'txt:abuse-cache' }],
    });
    const token = (login.json as { header: { session: string } }).header.session;
    const headers = { 'x-zb-session': token };
    const q = '{ afterSaleServices(pageSize: 3) { items { id } } }';
    const first = await t.gql(q, {}, headers);
    expect(first.errors).toBeUndefined();
    const storedBy = Date.now();
    // Wait on the clock's state, not a delay: the entry was stored at or before `storedBy`, fresh for 1 ms.
    await until(() => Date.now() > storedBy, 'the cached answer is stale');

    t.sim.sessions.revoke(token, 1);
    t.sim.calls.clear();
    const stale = await t.gql(q, {}, headers);
    expect(stale.data).toEqual(first.data);
    await until(() => t.logs.lines.some((l) => l.includes('"msg":"erp cache dropped"')), 'the refused refresh dropped the entry');
    expect(t.sim.calls.of('list').map((c) => c.session)).toEqual([token]);

    const next = await t.gql(q, {}, headers);
    expect(next.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.sim.calls.count('list')).toBe(2);
  });
});

describe('MemoryReadCacheStore bounded in bytes', () => {
  const entry = (v: string, tags = ['list']): CachedReply => ({ reply: reply(v), freshUntil: 10_000, staleUntil: 10_000, tags });

  it('counts each entry as its reply\'s JSON bytes plus its key, and evicts the least recently used beyond the bound', () => {
    const big = 'x'.repeat(1000);
    const one = entryBytes('k1', entry(big));
    expect(one).toBe(Buffer.byteLength('k1') + Math.ceil(Buffer.byteLength(JSON.stringify(reply(big))) * 3.5));
    const store = new MemoryReadCacheStore(1000, { maxBytes: 3 * one, now: () => 0 });
    for (const k of ['k1', 'k2', 'k3']) store.set(k, entry(big));
    expect(store.bytes).toBe(3 * one);
    store.get('k1');
    store.set('k4', entry(big));
    // Far below the entry bound, yet k2 (least recently used) made room.
    expect(store.size).toBe(3);
    expect(store.bytes).toBeLessThanOrEqual(3 * one);
    expect(store.get('k2')).toBeUndefined();
    expect(store.get('k1')).toBeDefined();
  });

  it('counts multi-byte text by its UTF-8 length, scaled to the heap a decoded reply takes', () => {
    const text = '打印机卡纸'.repeat(100);
    expect(entryBytes('k', entry(text))).toBe(1 + Math.ceil(Buffer.byteLength(JSON.stringify(reply(text)), 'utf8') * 3.5));
    expect(entryBytes('k', entry(text))).toBeGreaterThan(3 * 500);
  });

  it('an entry larger than the whole bound is not stored and leaves nothing behind in the tag index', () => {
    const store = new MemoryReadCacheStore(10, { maxBytes: 2048, now: () => 0 });
    store.set('k', entry('small', ['detail:1']));
    store.set('k', entry('y'.repeat(4096), ['detail:1']));
    // The oversized answer replaces nothing: the key holds no stale predecessor either.
    expect(store.get('k')).toBeUndefined();
    expect(store.size).toBe(0);
    expect(store.bytes).toBe(0);
    store.set('k', entry('again', ['detail:2']));
    store.dropTagged(['detail:1']);
    expect(store.get('k')).toEqual(entry('again', ['detail:2']));
  });

  it('the old signature (entry bound and a clock) still works', () => {
    let now = 1000;
    const store = new MemoryReadCacheStore(2, () => now);
    store.set('k', { ...entry('v'), staleUntil: 1100 });
    now = 1101;
    expect(store.get('k')).toBeUndefined();
  });
});
