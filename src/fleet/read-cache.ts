import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { CachedReply, ReadCacheStore } from '../erp/cache-store';
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

// Redis's clock in microseconds: one clock for every replica's reads and drops.
const NOW_US = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])`;

const GET = `${NOW_US}
return {redis.call('GET', KEYS[1]) or '', tostring(now)}`;

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

/** Marks each tag dropped now and deletes its entries. KEYS: per tag its drop mark, then its member set. */
const DROP = `${NOW_US}
local tags = #KEYS / 2
for i = 1, tags do
  redis.call('SET', KEYS[i], tostring(now), 'PX', ARGV[1])
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
  /** Per key, when (Redis µs) the earliest read that may store it started, and when we noted it (local ms). */
  private readonly starts = new Map<string, { at: number; noted: number }>();
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

  private entryKey(key: string): string {
    return this.redis.key('cache', FleetRedis.digest(key));
  }

  private tagKeys(tag: string): [string, string] {
    const digest = FleetRedis.digest(tag);
    return [this.redis.key('cdrop', digest), this.redis.key('ctag', digest)];
  }

  async get(key: string): Promise<CachedReply | undefined> {
    const local = this.flights.get(key);
    if (local) return local.done;
    let found: CachedReply | undefined;
    try {
      found = await this.lookup(key, true);
    } catch {
      this.observer.sharedCache?.('error');
      return undefined;
    }
    if (found && this.now() < found.freshUntil) {
      this.observer.sharedCache?.('hit');
      return found;
    }
    this.observer.sharedCache?.('miss');
    // Stale: the layer serves it and refreshes in the background (each replica once per key).
    if (found) return found;
    return this.coldMiss(key);
  }

  async set(key: string, entry: CachedReply): Promise<void> {
    const flight = this.flights.get(key);
    try {
      await this.store(key, entry, flight?.owner ?? '');
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

  private async lookup(key: string, noteStart: boolean): Promise<CachedReply | undefined> {
    const [raw, at] = (await this.redis.run('cache.get', (c) => c.eval(GET, 1, this.entryKey(key)))) as [string, string];
    const shared = raw === '' ? undefined : (JSON.parse(raw) as Shared);
    const entry = shared && (shared.w === this.id && shared.f !== undefined ? { ...shared.e, fencedAt: shared.f } : shared.e);
    // A read is about to start (miss or stale): the earliest such start is what a later store is checked against.
    if (noteStart && !(entry && this.now() < entry.freshUntil)) this.noteStart(key, Number(at));
    return entry;
  }

  private noteStart(key: string, at: number): void {
    const now = Date.now();
    const known = this.starts.get(key);
    if (!known || now - known.noted > this.options.maxReadMs) this.starts.set(key, { at, noted: now });
    // Bounded: starts older than any read can take are useless.
    if (this.starts.size > 10_000) {
      for (const [k, v] of this.starts) if (now - v.noted > this.options.maxReadMs) this.starts.delete(k);
    }
  }

  private async coldMiss(key: string): Promise<CachedReply | undefined> {
    const owner = randomUUID();
    const lockKey = `${this.entryKey(key)}:flight`;
    const giveUpAt = Date.now() + this.options.flightMs;
    for (;;) {
      try {
        const won = (await this.redis.run('cache.flight', (c) => c.set(lockKey, owner, 'PX', this.options.flightMs, 'NX'))) === 'OK';
        if (won) {
          // The previous lead may have stored (and freed the lock) between our last look and our lock.
          const stored = await this.lookup(key, true);
          if (stored) {
            await this.redis.run('cache.flight', (c) => c.del(lockKey)).catch(() => undefined);
            this.observer.singleFlight?.('joined');
            return stored;
          }
          this.lead(key, owner);
          return undefined;
        }
        if (Date.now() >= giveUpAt) break;
        await delay(this.pollMs);
        const entry = await this.lookup(key, false);
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
    await this.lookup(key, true).catch(() => undefined);
    return undefined;
  }

  /** This replica reads the key for the fleet; callers in this process wait for its answer (`set`), bounded. */
  private lead(key: string, owner: string): void {
    this.observer.singleFlight?.('lead');
    let settle!: (entry: CachedReply | undefined) => void;
    const done = new Promise<CachedReply | undefined>((resolve) => (settle = resolve));
    const flight: Flight = { done, settle, owner };
    this.flights.set(key, flight);
    // The lead read may fail and never store: this process's waiters then read for themselves.
    setTimeout(() => {
      if (this.flights.get(key) === flight) {
        this.flights.delete(key);
        settle(undefined);
      }
    }, this.options.flightMs).unref();
  }

  private async store(key: string, entry: CachedReply, flightOwner: string): Promise<void> {
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
        c.eval(SET, 2 + 2 * tags.length, entryKey, `${entryKey}:flight`, ...tags.map((t) => t[0]), ...tags.map((t) => t[1]), String(start.at), value, String(lifeMs), flightOwner),
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
