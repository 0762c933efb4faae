import { LRUCache } from 'lru-cache';
import type { WriteFence } from './fence';
import type { ErpReply } from './types';

/**
 * Where the read cache (layers/cache.ts) keeps its answers: the contract of a store, and the in-process default.
 */

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

export type MaybePromise<T> = T | Promise<T>;

/**
 * Where cached answers live. The in-process store answers synchronously; a shared one (Redis, memcached) may answer
 * with promises. Keys already carry the caller's identity. A store may drop an entry at any time, and must drop it
 * by `staleUntil`.
 */
export interface ReadCacheStore {
  /** `tags`: what the read shows (fence.ts's read tags), for a shared store to report their epochs to the fence. */
  get(key: string, tags?: readonly string[]): MaybePromise<CachedReply | undefined>;
  set(key: string, entry: CachedReply): MaybePromise<void>;
  /** Drops every entry that carries any of `tags`, whoever's identity it is under. */
  dropTagged(tags: readonly string[]): MaybePromise<void>;
  /**
   * A store shared by replicas reports to the stack's write fence (`observe`) the epochs other replicas' saves moved,
   * during `get`, before the read goes on to coalescing or the ERP: the fence then holds fleet-wide.
   */
  bindFence?(fence: WriteFence): void;
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
