import { detached, readKey, type ErpCall, type ErpLayer, type Send } from '../call';
import type { CachedReply, MaybePromise, ReadCacheStore } from '../cache-store';
import { ErpAuthError, ErpSessionError } from '../errors';
import { readTags, serviceTags, WriteFence } from '../fence';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

// The store lives beside the client (cache-store.ts); what the cache is built with is importable from here too.
export { entryBytes, MemoryReadCacheStore, type CachedReply, type MemoryReadCacheOptions, type ReadCacheStore } from '../cache-store';

export interface CacheOptions {
  /** How long a read answer is served as fresh. */
  ttlMs: number;
  /** After that, how long it may still be served while one background call refreshes it. */
  staleMs: number;
  /** The clock, epoch ms; tests pass their own so expiry is deterministic. */
  now?: () => number;
}

export interface ReadCache extends ErpLayer {
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
 * read started before a write (or an invalidation) of what it shows is neither stored nor served after it. A shared
 * store (fleet/read-cache.ts) also moves the fence on other replicas' saves, from the epochs its lookups see.
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
    next(detached(call))
      .then(
        (reply) => put(key, call, tags, reply, startedAt),
        (e: unknown) => (refusesIdentity(e) ? dropIdentity(call, e) : undefined),
      )
      .catch(() => undefined)
      .finally(() => {
        if (refreshing.get(key) === startedAt) refreshing.delete(key);
      });
  };

  /** The ERP's answer, kept unless a write of what it reads started meanwhile (the fence). */
  async function readThrough(key: string, call: ErpCall, tags: readonly string[], next: Send, startedAt: number): Promise<ErpReply> {
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
  }

  async function invalidate(tags: readonly string[]): Promise<void> {
    // Fenced first: a read in flight that answers while the store is still dropping must not be stored.
    fence.bump(tags);
    await store.dropTagged(tags);
  }

  return {
    wrap: (next) => async (call) => {
      if (call.kind !== 'read') return next(call);
      const key = readKey(call);
      const tags = readTags(call);
      let startedAt = fence.position();
      if (call.fresh) {
        // Not answered from here; its answer replaces what is kept (a read that reaches the ERP is never stale).
        observer.cache?.(call, 'bypass');
        return readThrough(key, call, tags, next, startedAt);
      }
      const found = store.get(key, tags);
      // The in-process store answers in the same tick, so a miss reaches the ERP (and coalescing) without a detour.
      let entry: CachedReply | undefined;
      if (isPromise(found)) {
        entry = servable(await found, tags);
        // A shared store may have moved the fence on another replica's save just now: this read starts after that. A
        // write of this process that settled meanwhile reached the ERP before this read does; one still unsettled
        // bumps again when it settles, so the answer is still not kept.
        startedAt = fence.position();
      } else entry = servable(found, tags);
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
      return readThrough(key, call, tags, next, startedAt);
    },
    invalidate,
    invalidateService: (ord) => invalidate(serviceTags(ord)),
  };
}
