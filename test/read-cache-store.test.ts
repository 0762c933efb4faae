import type { ErpCall, Send } from '../src/erp/call';
import { MemoryReadCacheStore, readCache, type CachedReply, type ReadCacheStore } from '../src/erp/layers/cache';
import type { ErpReply } from '../src/erp/types';

/** The read cache's store: the in-memory default's tag index and bounds, and the contract a shared store would meet. */
const reply = (v: string): ErpReply => ({ header: { status: 0, message: '' }, body: { v } });
const entry = (tags: string[], staleUntil = 10_000): CachedReply => ({ reply: reply(tags.join()), freshUntil: staleUntil, staleUntil, tags });

describe('MemoryReadCacheStore', () => {
  it('drops exactly the tagged entries, under every identity', () => {
    const store = new MemoryReadCacheStore(100, () => 0);
    store.set('svc|detail 1', entry(['detail:1']));
    store.set('user|detail 1', entry(['detail:1']));
    store.set('svc|detail 2', entry(['detail:2']));
    store.set('svc|list p1', entry(['list']));
    store.set('user|list p2', entry(['list']));
    store.dropTagged(['list', 'detail:1']);
    expect(store.get('svc|detail 1')).toBeUndefined();
    expect(store.get('user|detail 1')).toBeUndefined();
    expect(store.get('svc|list p1')).toBeUndefined();
    expect(store.get('user|list p2')).toBeUndefined();
    expect(store.get('svc|detail 2')).toEqual(entry(['detail:2']));
    expect(store.size).toBe(1);
  });

  it('stays within its entry bound, and an evicted key leaves the tag index with it', () => {
    const store = new MemoryReadCacheStore(2, () => 0);
    store.set('a', entry(['detail:1']));
    store.set('b', entry(['detail:2']));
    store.set('c', entry(['detail:3']));
    expect(store.size).toBe(2);
    expect(store.get('a')).toBeUndefined();
    // Had 'a' stayed indexed, this would try to drop a key that is gone; with a fresh 'a' under another tag it must
    // survive a drop of its old tag.
    store.set('a', entry(['detail:9']));
    store.dropTagged(['detail:1']);
    expect(store.get('a')).toEqual(entry(['detail:9']));
  });

  it('lets an entry go once its stale window has passed', () => {
    let now = 1000;
    const store = new MemoryReadCacheStore(10, () => now);
    store.set('k', entry(['list'], 1500));
    now = 1499;
    expect(store.get('k')).toBeDefined();
    now = 1501;
    expect(store.get('k')).toBeUndefined();
  });
});

describe('a store that answers with promises, as a shared one would', () => {
  class AsyncStore implements ReadCacheStore {
    readonly inner = new MemoryReadCacheStore(100, () => 0);
    readonly ops: string[] = [];
    get(key: string) {
      this.ops.push('get');
      return Promise.resolve(this.inner.get(key));
    }
    set(key: string, e: CachedReply) {
      this.ops.push('set');
      this.inner.set(key, e);
      return Promise.resolve();
    }
    dropTagged(tags: readonly string[]) {
      this.ops.push(`drop ${tags.join(' ')}`);
      this.inner.dropTagged(tags);
      return Promise.resolve();
    }
  }

  it('serves hits from it, fills it on a miss, and invalidates through it', async () => {
    const store = new AsyncStore();
    const cache = readCache({ ttlMs: 1000, staleMs: 0, now: () => 0 }, {}, store);
    let upstream = 0;
    const send: Send = () => Promise.resolve(reply(`answer ${++upstream}`));
    const read = cache.wrap(send);
    const call: ErpCall = { endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: '7' }] };
    await expect(read(call)).resolves.toEqual(reply('answer 1'));
    await expect(read(call)).resolves.toEqual(reply('answer 1'));
    expect(upstream).toBe(1);
    await cache.invalidateService('7');
    await expect(read(call)).resolves.toEqual(reply('answer 2'));
    expect(store.ops).toEqual(['get', 'set', 'get', 'drop list detail:7', 'get', 'set']);
  });

  it('a store that fails to keep an answer costs a later miss, not the caller its answer', async () => {
    const failing: ReadCacheStore = {
      get: () => Promise.resolve(undefined),
      set: () => Promise.reject(new Error('store down')),
      dropTagged: () => Promise.resolve(),
    };
    const read = readCache({ ttlMs: 1000, staleMs: 0 }, {}, failing).wrap(() => Promise.resolve(reply('fine')));
    await expect(read({ endpoint: 'list', path: '/list.asp', kind: 'read', cmdkey: 'refresh', datas: [] })).resolves.toEqual(reply('fine'));
  });
});
