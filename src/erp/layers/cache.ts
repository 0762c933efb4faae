import { LRUCache } from 'lru-cache';
import { readKey, type ErpCall, type Layer, type Send } from '../call';
import type { ErpPaths } from '../client';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

export interface CacheOptions {
  /** How long a read answer is served as fresh. */
  ttlMs: number;
  /** After that, how long it may still be served while one background call refreshes it. */
  staleMs: number;
  maxEntries: number;
  /** The clock, epoch ms; tests pass their own so expiry is deterministic. */
  now?: () => number;
}

interface Entry {
  reply: ErpReply;
  freshUntil: number;
  staleUntil: number;
  path: string;
  ord: string | undefined;
}

export interface ReadCache {
  layer: Layer;
  /** Forget the detail of `ord` and every list page, for every identity: called after a save. */
  invalidateService(ord: string, paths: Pick<ErpPaths, 'list' | 'detail'>): void;
  readonly size: number;
}

/**
 * A short-lived cache of read answers with stale-while-revalidate. Keys include the caller's identity, so no user is
 * ever served another user's answer. In this process for now; the `ReadCache` shape allows a shared store later.
 */
export function readCache(options: CacheOptions, observer: ErpObserver = {}): ReadCache {
  const entries = new LRUCache<string, Entry>({ max: options.maxEntries });
  const clock = options.now ?? Date.now;
  const refreshing = new Set<string>();
  // Bumped by every invalidation: an answer fetched before a save must not be stored after it.
  let generation = 0;

  const store = (key: string, call: ErpCall, reply: ErpReply, startedAt: number) => {
    if (startedAt !== generation) return;
    const now = clock();
    const ord = call.datas.find((d) => d.id === 'ord');
    entries.set(key, { reply, freshUntil: now + options.ttlMs, staleUntil: now + options.ttlMs + options.staleMs, path: call.path, ord: ord ? String(ord.val) : undefined });
  };

  const refresh = (key: string, call: ErpCall, next: Send) => {
    if (refreshing.has(key)) return;
    refreshing.add(key);
    const gen = generation;
    // Nobody waits for a background refresh, so no caller's signal applies to it.
    const { signal: _signal, ...detached } = call;
    next(detached)
      .then((reply) => store(key, call, reply, gen))
      .catch(() => undefined)
      .finally(() => refreshing.delete(key));
  };

  return {
    layer: (next) => async (call) => {
      if (call.kind !== 'read') return next(call);
      const key = readKey(call);
      const entry = entries.get(key);
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
      store(key, call, reply, gen);
      return reply;
    },
    invalidateService(ord, paths) {
      generation++;
      for (const [key, entry] of entries.entries()) {
        if (entry.path === paths.list || (entry.path === paths.detail && entry.ord === ord)) entries.delete(key);
      }
    },
    get size() {
      return entries.size;
    },
  };
}
