import { LRUCache } from 'lru-cache';
import { readKey, type ErpCall, type Layer, type Send } from '../call';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

export interface CacheOptions {
  /** How long a read answer is served as fresh. */
  ttlMs: number;
  /** After that, how long it may still be served while one background call refreshes it. */
  staleMs: number;
  /** The clock, epoch ms; tests pass their own so expiry is deterministic. */
  now?: () => number;
}

/** One cached answer. `tags` name what a save makes stale: `list`, or `detail:<ord>`. */
export interface CachedReply {
  reply: ErpReply;
  freshUntil: number;
  staleUntil: number;
  tags: string[];
}

type MaybePromise<T> = T | Promise<T>;

/**
 * Where cached answers live. The in-process store answers synchronously; a shared one (Redis, memcached) may answer
 * with promises. Keys already carry the caller's identity. A store may drop an entry at any time, and must drop it
 * by `staleUntil`.
 */
export interface ReadCacheStore {
  get(key: string): MaybePromise<CachedReply | undefined>;
  set(key: string, entry: CachedReply): MaybePromise<void>;
  /** Drops every entry that carries any of `tags`, whoever's identity it is under. */
  dropTagged(tags: readonly string[]): MaybePromise<void>;
}

/** The default store: an LRU bounded by entry count, with a tag index so a save drops only what it touched. */
export class MemoryReadCacheStore implements ReadCacheStore {
  private readonly byTag = new Map<string, Set<string>>();
  private readonly entries: LRUCache<string, CachedReply>;

  constructor(
    maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new LRUCache<string, CachedReply>({
      max: maxEntries,
      // Evicted, expired, replaced or deleted: the key leaves the tag index with it.
      dispose: (entry, key) => {
        for (const tag of entry.tags) {
          const keys = this.byTag.get(tag);
          keys?.delete(key);
          if (keys?.size === 0) this.byTag.delete(tag);
        }
      },
      // Expiry on the same clock as the entries' own times (epoch ms, or a test's clock).
      perf: { now },
      // Read the clock on every check rather than caching it for a millisecond behind a timer.
      ttlResolution: 0,
    });
  }

  get(key: string): CachedReply | undefined {
    return this.entries.get(key);
  }

  set(key: string, entry: CachedReply): void {
    const ttl = Math.max(1, entry.staleUntil - this.now());
    this.entries.set(key, entry, { ttl });
    for (const tag of entry.tags) {
      let keys = this.byTag.get(tag);
      if (!keys) this.byTag.set(tag, (keys = new Set()));
      keys.add(key);
    }
  }

  dropTagged(tags: readonly string[]): void {
    for (const tag of tags) {
      for (const key of [...(this.byTag.get(tag) ?? [])]) this.entries.delete(key);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

export interface ReadCache {
  layer: Layer;
  /** Forget the detail of `ord` and every list page, for every identity: called after a save. */
  invalidateService(ord: string): Promise<void>;
}

function tagsOf(call: ErpCall): string[] {
  if (call.endpoint !== 'detail') return [call.endpoint];
  const ord = call.datas.find((d) => d.id === 'ord');
  return [`detail:${ord ? String(ord.val).trim() : ''}`];
}

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function';

/**
 * A short-lived cache of read answers with stale-while-revalidate. Keys include the caller's identity, so no user is
 * ever served another user's answer.
 */
export function readCache(options: CacheOptions, observer: ErpObserver, store: ReadCacheStore): ReadCache {
  const clock = options.now ?? Date.now;
  const refreshing = new Set<string>();
  // Bumped by every invalidation: an answer fetched before a save must not be stored after it. This guards this
  // process's own reads; a shared store would also need the other instances' in-flight reads fenced (left for then).
  let generation = 0;

  const put = async (key: string, call: ErpCall, reply: ErpReply, startedAt: number) => {
    if (startedAt !== generation) return;
    const now = clock();
    await store.set(key, { reply, freshUntil: now + options.ttlMs, staleUntil: now + options.ttlMs + options.staleMs, tags: tagsOf(call) });
  };

  const refresh = (key: string, call: ErpCall, next: Send) => {
    if (refreshing.has(key)) return;
    refreshing.add(key);
    const gen = generation;
    // Nobody waits for a background refresh, so no caller's signal applies to it.
    const { signal: _signal, ...detached } = call;
    next(detached)
      .then((reply) => put(key, call, reply, gen))
      .catch(() => undefined)
      .finally(() => refreshing.delete(key));
  };

  return {
    layer: (next) => async (call) => {
      if (call.kind !== 'read') return next(call);
      const key = readKey(call);
      const found = store.get(key);
      // The in-process store answers in the same tick, so a miss reaches the ERP (and coalescing) without a detour.
      const entry = isPromise(found) ? await found : found;
      const now = clock();
      if (entry && now < entry.freshUntil) {
        observer.cache?.(call, 'hit');
        return entry.reply;
      }
      if (entry && now < entry.staleUntil) {
        observer.cache?.(call, 'stale');
        refresh(key, call, next);
        return entry.reply;
      }
      observer.cache?.(call, 'miss');
      const gen = generation;
      const reply = await next(call);
      // A store that fails to keep an answer costs a future miss, never this caller's answer.
      await put(key, call, reply, gen).catch(() => undefined);
      return reply;
    },
    async invalidateService(ord) {
      generation++;
      await store.dropTagged(['list', `detail:${ord.trim()}`]);
    },
  };
}
