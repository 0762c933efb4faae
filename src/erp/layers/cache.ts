import { LRUCache } from 'lru-cache';
import { readKey, type ErpCall, type Layer, type Send } from '../call';
import { ErpAuthError, ErpSessionError } from '../errors';
import { readTags, serviceTags, WriteFence } from '../fence';
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
 * One cached answer. `tags` name what a save makes stale (`list`, or `detail:<ord>`: fence.ts) and whose answer it is
 * (`identity:<identity>`, dropped when the ERP refuses that identity's session).
 */
export interface CachedReply {
  reply: ErpReply;
  freshUntil: number;
  staleUntil: number;
  tags: string[];
  /**
   * This process's write-fence position when the read that fetched it started: it is not served once a write of what it
   * shows has been sent since. Absent on entries stored by anything else, which only tag drops remove.
   */
  fencedAt?: number;
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
  /**
   * Forget every answer tagged with any of `tags`, for every identity, and fence the reads of them in flight so their
   * answers are not stored either.
   */
  invalidate(tags: readonly string[]): Promise<void>;
  /** `invalidate` of what a save of `ord` changes: its detail and every list page. */
  invalidateService(ord: string): Promise<void>;
}

const identityTag = (call: ErpCall) => `identity:${call.auth?.identity ?? ''}`;

/** The ERP refused the caller's session or account: nothing cached under that identity may be served any more. */
const refusesIdentity = (e: unknown): e is ErpSessionError | ErpAuthError => e instanceof ErpSessionError || e instanceof ErpAuthError;

const isPromise = <T>(v: MaybePromise<T>): v is Promise<T> => typeof (v as Promise<T> | undefined)?.then === 'function';

/**
 * A short-lived cache of read answers with stale-while-revalidate. Keys include the caller's identity, so no user is
 * ever served another user's answer.
 *
 * `fence` is the stack's write fence (shared with coalescing, so writes passing the stack move it); an answer whose
 * read started before a write (or an invalidation) of what it shows is neither stored nor served after it. This
 * guards this process's own reads; a shared store would also need the other instances' writes fenced (left for then).
 */
export function readCache(options: CacheOptions, observer: ErpObserver, store: ReadCacheStore, fence: WriteFence = new WriteFence()): ReadCache {
  const clock = options.now ?? Date.now;
  // Background refreshes in flight, by key, with the fence position each started at.
  const refreshing = new Map<string, number>();

  const put = async (key: string, call: ErpCall, tags: readonly string[], reply: ErpReply, startedAt: number) => {
    if (fence.movedSince(tags, startedAt)) return;
    const now = clock();
    const staleUntil = now + options.ttlMs + options.staleMs;
    await store.set(key, { reply, freshUntil: now + options.ttlMs, staleUntil, tags: [...tags, identityTag(call)], fencedAt: startedAt });
  };

  // Also covers a save that lands while an asynchronous store is answering, or before its drop has reached the store.
  const servable = (entry: CachedReply | undefined, tags: readonly string[]) =>
    entry && (entry.fencedAt === undefined || !fence.movedSince(tags, entry.fencedAt)) ? entry : undefined;

  // A kicked or expired user must not go on reading stale answers: the next read goes to the ERP and fails there.
  const dropIdentity = async (call: ErpCall, e: ErpSessionError | ErpAuthError) => {
    await store.dropTagged([identityTag(call)]);
    observer.cacheDropped?.(call, e.code);
  };

  const refresh = (key: string, call: ErpCall, tags: readonly string[], next: Send) => {
    const running = refreshing.get(key);
    // One refresh per key, unless the running one started before a write of what it reads: its answer will not be kept.
    if (running !== undefined && !fence.movedSince(tags, running)) return;
    const startedAt = fence.position();
    refreshing.set(key, startedAt);
    // Nobody waits for a background refresh, so no caller's signal applies to it.
    const { signal: _signal, ...detached } = call;
    next(detached)
      .then(
        (reply) => put(key, call, tags, reply, startedAt),
        (e: unknown) => (refusesIdentity(e) ? dropIdentity(call, e) : undefined),
      )
      .catch(() => undefined)
      .finally(() => {
        if (refreshing.get(key) === startedAt) refreshing.delete(key);
      });
  };

  async function invalidate(tags: readonly string[]): Promise<void> {
    // Fenced first: a read in flight that answers while the store is still dropping must not be stored.
    fence.bump(tags);
    await store.dropTagged(tags);
  }

  return {
    layer: (next) => async (call) => {
      if (call.kind !== 'read') return next(call);
      const key = readKey(call);
      const tags = readTags(call);
      const startedAt = fence.position();
      const found = store.get(key);
      // The in-process store answers in the same tick, so a miss reaches the ERP (and coalescing) without a detour.
      const entry = servable(isPromise(found) ? await found : found, tags);
      const now = clock();
      if (entry && now < entry.freshUntil) {
        observer.cache?.(call, 'hit');
        return entry.reply;
      }
      if (entry && now < entry.staleUntil) {
        observer.cache?.(call, 'stale');
        refresh(key, call, tags, next);
        return entry.reply;
      }
      observer.cache?.(call, 'miss');
      let reply: ErpReply;
      try {
        reply = await next(call);
      } catch (e) {
        if (refusesIdentity(e)) await dropIdentity(call, e).catch(() => undefined);
        throw e;
      }
      // A store that fails to keep an answer costs a future miss, never this caller's answer.
      await put(key, call, tags, reply, startedAt).catch(() => undefined);
      return reply;
    },
    invalidate,
    invalidateService: (ord) => invalidate(serviceTags(ord)),
  };
}
