import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { CachedReply, ReadCacheStore } from '../erp/cache-store';
import type { WriteFence } from '../erp/fence';
import type { FleetObserver } from './observer';
import { FleetRedis, RedisUnavailableError } from './redis';

export interface RedisReadCacheOptions {
  /** How long one replica leads a cold read of a key before the others stop waiting and read it themselves (about ZB_TIMEOUT_MS). */
  flightMs: number;
  /** The longest a read (with its retries) may take: its start is remembered this long, and drop marks are kept this long beyond an entry's life. */
  maxReadMs: number;
  /** The longest an entry lives (ZB_CACHE_TTL_MS + ZB_CACHE_STALE_MS). */
  entryLifeMs: number;
  /** Entries larger than this (JSON bytes) are not shared. */
  maxEntryBytes?: number;
  pollMs?: number;
  /** The layer's clock (the entries' freshUntil is on it). */
  now?: () => number;
  observer?: FleetObserver;
}

interface Shared {
  /** The entry, without this process's fence position. */
  e: Omit<CachedReply, 'fencedAt'>;
  /** Which process stored it, and its fence position then: only that process can compare it with its own fence. */
  w: string;
  f?: number;
}

// Redis's clock in microseconds: one clock for every replica's reads and drops. Written with %.0f: Lua's tostring
// keeps 14 digits, and a mark must be exact to be an epoch.
const NOW_US = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])`;

/** The entry, the clock, and the drop mark of each of the read's tags (its epochs). KEYS: the entry, the tags' marks. */
const GET = `${NOW_US}
local out = {redis.call('GET', KEYS[1]) or '', string.format('%.0f', now)}
for i = 2, #KEYS do out[i + 1] = redis.call('GET', KEYS[i]) or '' end
return out`;

/**
 * Stores an entry only if none of its tags was dropped since its read started (ARGV[1], from GET's clock): a read that
 * raced a save on any replica is not kept. KEYS: the entry, its flight lock, then per tag its drop mark and member set.
 */
const SET = `local started = tonumber(ARGV[1])
local tags = (#KEYS - 2) / 2
for i = 1, tags do
  local dropped = redis.call('GET', KEYS[2 + i])
  if dropped and tonumber(dropped) >= started then
    if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
for i = 1, tags do
  redis.call('SADD', KEYS[2 + tags + i], KEYS[1])
  redis.call('PEXPIRE', KEYS[2 + tags + i], ARGV[3])
end
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
return 1`;

/**
 * Marks each tag dropped now and deletes its entries. A mark is also the tag's write epoch: it changes on every drop
 * (strictly increasing, even for two drops in one microsecond). KEYS: per tag its drop mark, then its member set.
 */
const DROP = `${NOW_US}
local tags = #KEYS / 2
for i = 1, tags do
  local mark = math.max(now, (tonumber(redis.call('GET', KEYS[i])) or 0) + 1)
  redis.call('SET', KEYS[i], string.format('%.0f', mark), 'PX', ARGV[1])
  local members = redis.call('SMEMBERS', KEYS[tags + i])
  for j = 1, #members, 500 do
    redis.call('UNLINK', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[tags + i])
end
return tags`;

interface Flight {
  done: Promise<CachedReply | undefined>;
  settle(entry: CachedReply | undefined): void;
  owner: string;
  /** Its fleet lock (named by the epochs it started under), and the fence position and tags it started at. */
  lock: string;
  startedAt: number;
  tags: readonly string[];
}

/** Tags whose drop could not reach Redis, replayed when it is back; past this many, every shared entry is dropped. */
const MAX_PENDING_DROPS = 1024;

/**
 * The read cache's store shared by every replica (erp/cache-store.ts's contract), with fleet-wide invalidation and a
 * fleet-wide single flight for cold reads.
 *
 * - Entries live under `cache:<digest of the read key>` (the key carries the identity: no user is served another's
 *   answer), each tag's entries in a set, with Redis expiry at the entry's end of life.
 * - A drop (a save on any replica) deletes the tagged entries and leaves a drop mark on Redis's clock; an entry is
 *   stored only if none of its tags was dropped since its read started (the time `get` saw), so a read that raced a
 *   save on another replica is never kept.
 * - A cold miss takes the key's flight lock (SET NX PX): the winner reads the ERP and stores; replicas that lose wait
 *   for the entry (bounded by `flightMs`, then read themselves); callers in this process wait for this process's flight.
 * - Redis unreachable, slow or failing: a lookup is a miss and a store is skipped (reads go to the ERP, bounded by the
 *   process limits); drops that failed are replayed once Redis is back.
 */
export class RedisReadCacheStore implements ReadCacheStore {
  private readonly id = randomUUID();
  private readonly flights = new Map<string, Flight>();
  /**
   * Per key, when (Redis µs) the earliest read that may store it started, under which epochs, and when we noted it
   * (local ms). A read under newer epochs replaces it: reads under older ones are fenced off and never store.
   */
  private readonly starts = new Map<string, { at: number; epochs: string; noted: number }>();
  private fence: WriteFence | undefined;
  private readonly pendingDrops = new Set<string>();
  private dropEverything = false;
  private readonly pollMs: number;
  private readonly maxEntryBytes: number;
  private readonly now: () => number;
  private readonly observer: FleetObserver;

  constructor(
    private readonly redis: FleetRedis,
    private readonly options: RedisReadCacheOptions,
  ) {
    this.pollMs = options.pollMs ?? 20;
    this.maxEntryBytes = options.maxEntryBytes ?? 1024 * 1024;
    this.now = options.now ?? Date.now;
    this.observer = options.observer ?? {};
    redis.client.on('ready', () => void this.replayDrops());
  }

  /** The stack's write fence: every lookup reports its tags' epochs to it, so other replicas' saves move it. */
  bindFence(fence: WriteFence): void {
    this.fence = fence;
  }

  private entryKey(key: string): string {
    return this.redis.key('cache', FleetRedis.digest(key));
  }

  private tagKeys(tag: string): [string, string] {
    const digest = FleetRedis.digest(tag);
    return [this.redis.key('cdrop', digest), this.redis.key('ctag', digest)];
  }

  async get(key: string, tags: readonly string[] = []): Promise<CachedReply | undefined> {
    let found: CachedReply | undefined;
    let epochs: string;
    try {
      // Looked up even when this process leads the key: the epochs seen now say whether that flight may be joined.
      [found, epochs] = await this.lookup(key, tags, true);
    } catch {
      this.observer.sharedCache?.('error');
      return undefined;
    }
    if (found && this.now() < found.freshUntil) {
      this.observer.sharedCache?.('hit');
      return found;
    }
    const local = this.flights.get(key);
    // Only a flight that started after every save of what it reads that this read has seen (fence.ts).
    if (local && !this.fence?.movedSince(local.tags, local.startedAt)) return local.done;
    this.observer.sharedCache?.('miss');
    // Stale: the layer serves it and refreshes in the background (each replica once per key).
    if (found) return found;
    return this.coldMiss(key, tags, epochs);
  }

  async set(key: string, entry: CachedReply): Promise<void> {
    const flight = this.flights.get(key);
    try {
      await this.store(key, entry, flight);
    } finally {
      if (flight) {
        this.flights.delete(key);
        flight.settle(entry);
      }
    }
  }

  async dropTagged(tags: readonly string[]): Promise<void> {
    if (tags.length === 0) return;
    try {
      await this.drop(tags);
    } catch {
      // Reads skip Redis while it is unreachable; the drop is made as soon as it is back.
      for (const tag of tags) this.pendingDrops.add(tag);
      if (this.pendingDrops.size > MAX_PENDING_DROPS) this.dropEverything = true;
    }
  }

  /** Drops that failed and wait for Redis (tests). */
  get pendingDropCount(): number {
    return this.dropEverything ? Number.POSITIVE_INFINITY : this.pendingDrops.size;
  }

  close(): void {
    for (const flight of this.flights.values()) flight.settle(undefined);
    this.flights.clear();
  }

  /** The entry, and the epochs of `tags` (reported to the fence) as one string. */
  private async lookup(key: string, tags: readonly string[], noteStart: boolean): Promise<[CachedReply | undefined, string]> {
    const marks = tags.map((t) => this.tagKeys(t)[0]);
    const [raw, at, ...seen] = (await this.redis.run('cache.get', (c) => c.eval(GET, 1 + marks.length, this.entryKey(key), ...marks))) as string[];
    tags.forEach((tag, i) => this.fence?.observe(tag, seen[i] ?? ''));
    const epochs = seen.join(',');
    const shared = raw ? (JSON.parse(raw) as Shared) : undefined;
    const entry = shared && (shared.w === this.id && shared.f !== undefined ? { ...shared.e, fencedAt: shared.f } : shared.e);
    // A read is about to start (miss or stale): the earliest such start is what a later store is checked against.
    if (noteStart && !(entry && this.now() < entry.freshUntil)) this.noteStart(key, Number(at), epochs);
    return [entry, epochs];
  }

  private noteStart(key: string, at: number, epochs: string): void {
    const now = Date.now();
    const known = this.starts.get(key);
    if (!known || known.epochs !== epochs || now - known.noted > this.options.maxReadMs) this.starts.set(key, { at, epochs, noted: now });
    // Bounded: starts older than any read can take are useless.
    if (this.starts.size > 10_000) {
      for (const [k, v] of this.starts) if (now - v.noted > this.options.maxReadMs) this.starts.delete(k);
    }
  }

  private async coldMiss(key: string, tags: readonly string[], epochs: string): Promise<CachedReply | undefined> {
    const owner = randomUUID();
    // Named by the epochs: a flight that started before a save this read has seen is neither waited for nor joined.
    const lockKey = `${this.entryKey(key)}:flight${epochs ? `:${epochs}` : ''}`;
    const giveUpAt = Date.now() + this.options.flightMs;
    for (;;) {
      try {
        const won = (await this.redis.run('cache.flight', (c) => c.set(lockKey, owner, 'PX', this.options.flightMs, 'NX'))) === 'OK';
        if (won) {
          // The previous lead may have stored (and freed the lock) between our last look and our lock.
          const [stored] = await this.lookup(key, tags, true);
          if (stored) {
            await this.redis.run('cache.flight', (c) => c.del(lockKey)).catch(() => undefined);
            this.observer.singleFlight?.('joined');
            return stored;
          }
          this.lead(key, owner, lockKey, tags);
          return undefined;
        }
        if (Date.now() >= giveUpAt) break;
        await delay(this.pollMs);
        const [entry] = await this.lookup(key, tags, false);
        if (entry) {
          this.observer.singleFlight?.('joined');
          return entry;
        }
      } catch {
        break;
      }
    }
    this.observer.singleFlight?.('gave-up');
    // This read goes to the ERP: its start is now.
    await this.lookup(key, tags, true).catch(() => undefined);
    return undefined;
  }

  /** This replica reads the key for the fleet; callers in this process wait for its answer (`set`), bounded. */
  private lead(key: string, owner: string, lock: string, tags: readonly string[]): void {
    this.observer.singleFlight?.('lead');
    let settle!: (entry: CachedReply | undefined) => void;
    const done = new Promise<CachedReply | undefined>((resolve) => (settle = resolve));
    const flight: Flight = { done, settle, owner, lock, tags, startedAt: this.fence?.position() ?? 0 };
    // A flight fenced off by a save: its waiters read for themselves rather than wait for an answer nobody keeps.
    this.flights.get(key)?.settle(undefined);
    this.flights.set(key, flight);
    // The lead read may fail and never store: this process's waiters then read for themselves.
    setTimeout(() => {
      if (this.flights.get(key) === flight) {
        this.flights.delete(key);
        settle(undefined);
      }
    }, this.options.flightMs).unref();
  }

  private async store(key: string, entry: CachedReply, flight: Flight | undefined): Promise<void> {
    const start = this.starts.get(key);
    this.starts.delete(key);
    // No known start (Redis was unreachable when the read began): its answer may predate a save; not shared.
    if (!start) return;
    const { fencedAt, ...rest } = entry;
    const value = JSON.stringify({ e: rest, w: this.id, ...(fencedAt !== undefined ? { f: fencedAt } : {}) } satisfies Shared);
    if (value.length > this.maxEntryBytes) return;
    const lifeMs = Math.max(1, Math.ceil(entry.staleUntil - this.now()));
    const tags = entry.tags.map((t) => this.tagKeys(t));
    const entryKey = this.entryKey(key);
    await this.redis
      .run('cache.set', (c) =>
        c.eval(SET, 2 + 2 * tags.length, entryKey, flight?.lock ?? `${entryKey}:flight`, ...tags.map((t) => t[0]), ...tags.map((t) => t[1]), String(start.at), value, String(lifeMs), flight?.owner ?? ''),
      )
      .catch((e: unknown) => {
        if (!(e instanceof RedisUnavailableError)) throw e;
      });
  }

  private async drop(tags: readonly string[]): Promise<void> {
    const keys = tags.map((t) => this.tagKeys(t));
    // A drop mark outlives every entry whose read started before it.
    const markMs = this.options.entryLifeMs + this.options.maxReadMs;
    await this.redis.run('cache.drop', (c) => c.eval(DROP, 2 * keys.length, ...keys.map((k) => k[0]), ...keys.map((k) => k[1]), String(markMs)));
  }

  private async replayDrops(): Promise<void> {
    if (this.dropEverything) {
      try {
        await this.dropAll();
        this.dropEverything = false;
        this.pendingDrops.clear();
      } catch {
        return;
      }
    }
    const tags = [...this.pendingDrops];
    if (tags.length === 0) return;
    try {
      await this.drop(tags);
      for (const tag of tags) this.pendingDrops.delete(tag);
    } catch {
      // Still unreachable: the next 'ready' tries again.
    }
  }

  /** Every shared entry of this deployment's prefix, in batches (rare: only after more failed drops than are kept). */
  private async dropAll(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.run('cache.scan', (c) => c.scan(cursor, 'MATCH', this.redis.key('cache', '*'), 'COUNT', 500));
      cursor = next;
      if (keys.length > 0) await this.redis.run('cache.unlink', (c) => c.unlink(...keys));
    } while (cursor !== '0');
  }
}
