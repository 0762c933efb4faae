import { LRUCache } from 'lru-cache';
import { readKey, type ErpCall, type Layer, type Send } from '../call';
import { ErpAuthError, ErpSessionError } from '../errors';
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

/**
 * One cached answer. `tags` name what a save makes stale (`list`, or `detail:<ord>`) and whose answer it is
 * (`identity:<identity>`, dropped when the ERP refuses that identity's session).
 */
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

export interface MemoryReadCacheOptions {
  /** Bound on the estimated size of all entries: each is its reply's JSON length in UTF-8 plus its key. */
  maxBytes?: number;
  /** The clock, epoch ms. */
  now?: () => number;
}

// ZB_CACHE_MAX_BYTES's default.
const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

/**
 * A decoded reply takes 1.7-3.6x its JSON length on the heap (measured: a 20-row list 4.6 KB of JSON, ~14 KB of heap;
 * a detail 3.3 KB, ~12 KB), so an entry counts as 3.5x its JSON, and `maxBytes` is heap, not wire bytes.
 */
const HEAP_PER_JSON_BYTE = 3.5;

/** What an entry is counted as against `maxBytes`: measured once, when it is stored. */
export function entryBytes(key: string, entry: CachedReply): number {
  return Buffer.byteLength(key) + Math.ceil(Buffer.byteLength(JSON.stringify(entry.reply)) * HEAP_PER_JSON_BYTE);
}

/**
 * The default store: an LRU bounded by entry count and by estimated bytes, with a tag index so a save drops only what
 * it touched. The second argument is the options, or (as before) just the clock.
 */
export class MemoryReadCacheStore implements ReadCacheStore {
  private readonly byTag = new Map<string, Set<string>>();
  private readonly entries: LRUCache<string, CachedReply>;
  private readonly now: () => number;
  private readonly maxBytes: number;

  constructor(maxEntries: number, options: MemoryReadCacheOptions | (() => number) = {}) {
    const { now = Date.now, maxBytes = DEFAULT_MAX_BYTES } = typeof options === 'function' ? { now: options } : options;
    this.now = now;
    this.maxBytes = maxBytes;
    this.entries = new LRUCache<string, CachedReply>({
      max: maxEntries,
      // A few large replies (a 100-row page with long texts) weigh more than many small details.
      maxSize: maxBytes,
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
    const size = entryBytes(key, entry);
    if (size > this.maxBytes) {
      // The LRU would refuse it anyway; the tag index must not keep a key that was never stored.
      this.entries.delete(key);
      return;
    }
    const ttl = Math.max(1, entry.staleUntil - this.now());
    this.entries.set(key, entry, { ttl, size });
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

  /** The estimated bytes held, as counted against `maxBytes`. */
  get bytes(): number {
    return this.entries.calculatedSize;
  }
}

export interface ReadCache {
  layer: Layer;
  /** Forget the detail of `ord` and every list page, for every identity: called after a save. */
  invalidateService(ord: string): Promise<void>;
}

const identityTag = (call: ErpCall) => `identity:${call.auth?.identity ?? ''}`;

function tagsOf(call: ErpCall): string[] {
  if (call.endpoint !== 'detail') return [call.endpoint, identityTag(call)];
  const ord = call.datas.find((d) => d.id === 'ord');
  return [`detail:${ord ? String(ord.val).trim() : ''}`, identityTag(call)];
}

/** The ERP refused the caller's session or account: nothing cached under that identity may be served any more. */
const refusesIdentity = (e: unknown): e is ErpSessionError | ErpAuthError => e instanceof ErpSessionError || e instanceof ErpAuthError;

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

  // A kicked or expired user must not go on reading stale answers: the next read goes to the ERP and fails there.
  const dropIdentity = async (call: ErpCall, e: ErpSessionError | ErpAuthError) => {
    await store.dropTagged([identityTag(call)]);
    observer.cacheDropped?.(call, e.code);
  };

  const refresh = (key: string, call: ErpCall, next: Send) => {
    if (refreshing.has(key)) return;
    refreshing.add(key);
    const gen = generation;
    // Nobody waits for a background refresh, so no caller's signal applies to it.
    const { signal: _signal, ...detached } = call;
    next(detached)
      .then(
        (reply) => put(key, call, reply, gen),
        (e: unknown) => (refusesIdentity(e) ? dropIdentity(call, e) : undefined),
      )
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
      let reply: ErpReply;
      try {
        reply = await next(call);
      } catch (e) {
        if (refusesIdentity(e)) await dropIdentity(call, e).catch(() => undefined);
        throw e;
      }
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
