import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { fromRecord, IdempotencyKeyInUseError, IdempotencyStoreFullError, toRecord, type Claim, type IdempotencyStore, type StoredRecord } from '../domain/idempotency';
import type { HandleResult } from '../domain/handle';
import { IdempotencyStoreUnavailableError } from '../domain/recovery';
import type { FleetObserver } from './observer';
import { FleetRedis } from './redis';

export interface RedisIdempotencyStoreOptions {
  /** How long a completed key is kept (ZB_IDEMPOTENCY_TTL_MS); also the longest a claim's record lives. */
  ttlMs: number;
  /** A claim's lease: a bit above 2 x ZB_TIMEOUT_MS (a save and its re-read), refreshed while its call runs. */
  leaseMs: number;
  /** Longest a waiter polls for the first call's payload (the request deadline bounds it too). */
  maxWaitMs: number;
  /** Claims in flight in this replica at most (ZB_MAX_INFLIGHT_REQUESTS). */
  maxPending?: number;
  pollMs?: number;
  observer?: FleetObserver;
}

/**
 * The Redis idempotency store. Over 200 lines because claim, wait, complete, release and recovery are one protocol over
 * the same keys and Lua scripts; split apart, each half would be unreadable without the other.
 */

/** What Redis holds under a key: a claim in flight (`p`) or the first call's payload (`d`). */
type Stored =
  | { s: 'p'; fp: string; o: string; l: number; r?: number }
  | { s: 'd'; fp: string; rec: string };

// Redis's own clock, so replicas with skewed clocks agree on when a lease ran out.
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Claims atomically: a free key is claimed; a claim whose lease ran out with the same input is taken over as
 * 'recovered' (its holder may have sent the save); anything else is handed back as stored.
 */
const CLAIM = `${NOW}
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('SET', KEYS[1], cjson.encode({s = 'p', fp = ARGV[1], o = ARGV[2], l = now + tonumber(ARGV[3])}), 'PX', ARGV[4])
  return {'claimed', ''}
end
local r = cjson.decode(raw)
if r.s == 'p' and r.l < now and r.fp == ARGV[1] then
  r.o = ARGV[2]
  r.l = now + tonumber(ARGV[3])
  r.r = 1
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  return {'recovered', ''}
end
return {'stored', raw}`;

/** The holder extends its lease while its call runs. */
const HEARTBEAT = `${NOW}
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.s ~= 'p' or r.o ~= ARGV[1] then return 0 end
r.l = now + tonumber(ARGV[2])
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
return 1`;

/**
 * The holder failed before anything reached the ERP: the key is freed. A recovered claim is never freed (an earlier
 * holder may have sent the save): its lease is ended instead, so the next call recovers it again.
 */
const RELEASE = `local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local r = cjson.decode(raw)
if r.s ~= 'p' or r.o ~= ARGV[1] then return 0 end
if r.r then
  r.l = 0
  r.o = ''
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
  return 1
end
return redis.call('DEL', KEYS[1])`;

interface Held {
  fingerprint: string;
  owner: string;
  heartbeat: NodeJS.Timeout;
}

/**
 * handleService idempotency keys shared by every replica (README "Running several replicas"). A key is claimed with a
 * Lua script (one atomic step, Redis's clock); the claim carries the input's fingerprint, its holder and a lease the
 * holder refreshes; completion replaces it with the compact payload, kept `ttlMs`. A call that finds the key claimed
 * polls for the payload up to its deadline (then IDEMPOTENCY_KEY_IN_USE); a different input is refused on every
 * replica; an expired claim comes back as 'recovered' so the handler re-reads the service before saving. Redis
 * unreachable: the claim fails closed (IdempotencyStoreUnavailableError) before anything is sent.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly held = new Map<string, Held>();
  private readonly maxPending: number;
  private readonly pollMs: number;
  private readonly observer: FleetObserver;

  constructor(
    private readonly redis: FleetRedis,
    private readonly options: RedisIdempotencyStoreOptions,
  ) {
    this.maxPending = options.maxPending ?? 128;
    this.pollMs = options.pollMs ?? 100;
    this.observer = options.observer ?? {};
  }

  private redisKey(key: string): string {
    return this.redis.key('idem', FleetRedis.digest(key));
  }

  async claim(key: string, fingerprint: string): Promise<Claim> {
    if (this.held.size >= this.maxPending) throw new IdempotencyStoreFullError(this.maxPending);
    const redisKey = this.redisKey(key);
    const owner = randomUUID();
    let answer: [string, string];
    try {
      answer = (await this.redis.run('idempotency.claim', (c) =>
        c.eval(CLAIM, 1, redisKey, fingerprint, owner, String(this.options.leaseMs), String(this.options.ttlMs)),
      )) as [string, string];
    } catch (e) {
      this.observer.idempotency?.('unavailable');
      throw new IdempotencyStoreUnavailableError({ cause: e });
    }
    const [kind, raw] = answer;
    if (kind === 'claimed' || kind === 'recovered') {
      this.hold(key, redisKey, fingerprint, owner);
      this.observer.idempotency?.(kind);
      return { kind };
    }
    const stored = JSON.parse(raw) as Stored;
    if (stored.s === 'd') {
      this.observer.idempotency?.('replayed');
      return { kind: 'done', fingerprint: stored.fp, result: fromRecord(JSON.parse(stored.rec) as StoredRecord) };
    }
    // Another input's claim: the handler refuses it and never waits, so nothing is polled.
    if (stored.fp !== fingerprint) return { kind: 'pending', fingerprint: stored.fp, result: new Promise<HandleResult>(() => undefined) };
    this.observer.idempotency?.('waited');
    const result = this.waitFor(redisKey);
    // The handler attaches its own handlers (or refuses a different input and never looks): never unhandled.
    result.catch(() => undefined);
    return { kind: 'pending', fingerprint: stored.fp, result };
  }

  async complete(key: string, result: HandleResult): Promise<void> {
    const held = this.release_(key);
    if (!held) return;
    const done = (withFields: boolean) => JSON.stringify({ s: 'd', fp: held.fingerprint, rec: JSON.stringify(toRecord(result, withFields)) });
    // A payload too large is kept as the service id (a replay reloads the fields) rather than not at all.
    const value = done(true).length > 64 * 1024 ? done(false) : done(true);
    try {
      await this.redis.run('idempotency.complete', (c) => c.set(this.redisKey(key), value, 'PX', this.options.ttlMs));
    } catch {
      // The save stands. The claim's lease runs out and the next call with this key recovers it by re-reading.
    }
  }

  async release(key: string, _error: unknown): Promise<void> {
    const held = this.release_(key);
    if (!held) return;
    await this.redis.run('idempotency.release', (c) => c.eval(RELEASE, 1, this.redisKey(key), held.owner)).catch(() => undefined);
  }

  /** Claims this replica holds now (tests, metrics). */
  get pendingCount(): number {
    return this.held.size;
  }

  close(): void {
    for (const held of this.held.values()) clearInterval(held.heartbeat);
    this.held.clear();
  }

  private hold(key: string, redisKey: string, fingerprint: string, owner: string): void {
    const heartbeat = setInterval(() => {
      void this.redis.run('idempotency.heartbeat', (c) => c.eval(HEARTBEAT, 1, redisKey, owner, String(this.options.leaseMs))).catch(() => undefined);
    }, Math.max(100, Math.floor(this.options.leaseMs / 3)));
    heartbeat.unref();
    this.held.set(key, { fingerprint, owner, heartbeat });
  }

  private release_(key: string): Held | undefined {
    const held = this.held.get(key);
    if (!held) return undefined;
    clearInterval(held.heartbeat);
    this.held.delete(key);
    return held;
  }

  /**
   * The first call's payload, polled. The claim freed or its lease run out (its holder failed or died) is
   * IDEMPOTENCY_KEY_IN_USE: a retry then claims or recovers the key itself.
   */
  private async waitFor(redisKey: string): Promise<HandleResult> {
    const giveUpAt = Date.now() + this.options.maxWaitMs;
    for (;;) {
      await delay(this.pollMs);
      let raw: string | null;
      try {
        raw = await this.redis.run('idempotency.poll', (c) => c.get(redisKey));
      } catch (e) {
        throw new IdempotencyStoreUnavailableError({ cause: e });
      }
      if (raw === null) throw new IdempotencyKeyInUseError();
      const stored = JSON.parse(raw) as Stored;
      if (stored.s === 'd') return fromRecord(JSON.parse(stored.rec) as StoredRecord);
      // Leases are on Redis's clock; a second of slack absorbs the skew of an NTP-synchronised host.
      if (stored.l < Date.now() - 1000 || Date.now() > giveUpAt) throw new IdempotencyKeyInUseError();
    }
  }
}
