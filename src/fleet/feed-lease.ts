import { randomUUID } from 'node:crypto';
import type { FeedLease } from '../domain/feed';
import type { FleetObserver } from './observer';
import type { FleetRedis } from './redis';

export interface RedisFeedLeaseOptions {
  /** A key's lease expires this long after its last renewal: how soon another replica takes over from a dead holder. */
  leaseMs: number;
  /**
   * The longest a live holder's poll loop may go without calling `acquire` (its longest back-off plus one poll's
   * deadline): until then the lease is also renewed by a timer, so a poller backing off from a failing ERP keeps its
   * key instead of handing it around the fleet; past it the key is given up, as if released.
   */
  staleMs: number;
  observer?: FleetObserver;
}

// Take the key when free, or extend it when it is already ours (value = this process's token): one round trip.
const TAKE_OR_EXTEND = `
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

// Only extend: a key that expired meanwhile (and may be another's now) is not taken back by a timer.
const EXTEND = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// Freed only by its holder: a key that expired and was taken over is not ours to free.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface Held {
  timer: NodeJS.Timeout;
  lastAcquire: number;
}

/**
 * One poller per feed key across the fleet: `feed:lease:<key>` holds the token of the replica that polls (SET with
 * PX `leaseMs`), taken when free and extended by its holder on every `acquire` (the domain calls it before each poll)
 * and by a timer every third of `leaseMs` while held. A holder that dies stops extending and another replica's next
 * `acquire` takes the key over within `leaseMs` (plus one poll interval); `release` frees it at once.
 *
 * Redis unreachable or failing: `acquire` answers false (stand by). Fail safe rather than poll locally: a Redis
 * outage also stops the bus, so a local poll would reach this replica's subscribers only while costing the ERP one
 * poller per replica; standing by keeps the subscriptions open and the ERP unloaded, and whoever holds the key once
 * Redis answers again starts with a whole snapshot that every subscriber side diffs against its own view, so the
 * changes made meanwhile are delivered late rather than never.
 *
 * Not redis-semaphore's Mutex: the port is a non-blocking take-or-renew per poll for many keys, which is one script
 * here; a Mutex per key would bring its own acquire loop and refresh timer per key and still need the staleness bound.
 */
export class RedisFeedLease implements FeedLease {
  private readonly token = randomUUID();
  private readonly held = new Map<string, Held>();
  private readonly observer: FleetObserver;
  private closed = false;

  constructor(
    private readonly redis: FleetRedis,
    private readonly options: RedisFeedLeaseOptions,
  ) {
    this.observer = options.observer ?? {};
  }

  async acquire(key: string): Promise<boolean> {
    if (this.closed) return false;
    let holds: boolean;
    try {
      holds = (await this.redis.run('feed.lease', (c) => c.eval(TAKE_OR_EXTEND, 1, this.leaseKey(key), this.token, this.options.leaseMs))) === 1;
    } catch {
      // Fail safe (see above): stand by until Redis answers.
      holds = false;
    }
    if (holds && !this.closed) this.keep(key);
    else this.forget(key);
    return holds;
  }

  async release(key: string): Promise<void> {
    this.forget(key);
    await this.redis.run('feed.release', (c) => c.eval(RELEASE, 1, this.leaseKey(key), this.token)).catch(() => undefined);
  }

  /** Keys this replica holds now (for tests and metrics). */
  holding(): string[] {
    return [...this.held.keys()];
  }

  /** Shutdown: every held key is freed so another replica takes over at once. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.held.keys()].map((key) => this.release(key)));
  }

  private leaseKey(key: string): string {
    return this.redis.key('feed', 'lease', key);
  }

  private keep(key: string): void {
    const now = Date.now();
    const existing = this.held.get(key);
    if (existing) {
      existing.lastAcquire = now;
      return;
    }
    this.observer.feedLease?.('taken');
    const timer = setInterval(() => void this.refresh(key), Math.max(10, Math.floor(this.options.leaseMs / 3)));
    timer.unref();
    this.held.set(key, { timer, lastAcquire: now });
  }

  private forget(key: string): void {
    const held = this.held.get(key);
    if (!held) return;
    clearInterval(held.timer);
    this.held.delete(key);
  }

  private async refresh(key: string): Promise<void> {
    const held = this.held.get(key);
    if (!held) return;
    if (Date.now() - held.lastAcquire > this.options.staleMs) {
      // The poll loop stopped asking without releasing (stopped while an acquire was in flight): give the key up.
      await this.release(key);
      return;
    }
    try {
      const extended = await this.redis.run('feed.lease', (c) => c.eval(EXTEND, 1, this.leaseKey(key), this.token, this.options.leaseMs));
      if (extended !== 1 && this.held.get(key) === held) {
        // Expired (Redis was unreachable longer than the lease) and perhaps taken over: the next acquire decides.
        this.forget(key);
        this.observer.feedLease?.('lost');
      }
    } catch {
      // Redis failing: the next acquire stands by; the lease expires on its own if this lasts.
    }
  }
}
