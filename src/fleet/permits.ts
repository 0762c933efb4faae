import { randomUUID } from 'node:crypto';
import { Semaphore as RedisSemaphore } from 'redis-semaphore';
import { abortSignalOf, cancelOf, type CallSignal } from '../erp/abort';
import type { ErpLayer, Send } from '../erp/call';
import { ErpAbortedError, ErpBusyError } from '../erp/errors';
import type { FleetObserver } from './observer';
import type { FleetRedis } from './redis';

export interface FleetPermitOptions {
  /** ZB_FLEET_MAX_CONCURRENT_CALLS: ERP calls in flight across every replica sharing the Redis. */
  limit: number;
  /** ZB_FLEET_PERMIT_LEASE_MS: a permit expires this long after its last refresh (refreshed every third of it while held). */
  leaseMs: number;
  /** Longest wait for a permit (ZB_QUEUE_TIMEOUT_MS), then ERP_BUSY as for the process's own slots. */
  maxWaitMs: number;
  /** How often a replica says it is alive (the fallback share counts the replicas seen). */
  heartbeatMs?: number;
  observer?: FleetObserver;
}

// Replicas alive in the last three heartbeats, on Redis's clock.
const MEMBERSHIP = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])`;

/** A counting semaphore with a bounded wait, for the per-replica share while Redis is unreachable. */
class LocalShare {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(private size: () => number) {}

  acquire(maxWaitMs: number, signal?: CallSignal): Promise<boolean> {
    if (this.active < this.size()) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const cancel = signal && cancelOf(signal);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        cancel?.unwatch(onAbort);
        const at = this.waiters.indexOf(wake);
        if (at >= 0) this.waiters.splice(at, 1);
        resolve(ok);
      };
      const wake = () => {
        this.active++;
        done(true);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), maxWaitMs);
      if (cancel?.aborted) return done(false);
      cancel?.watch(onAbort);
      this.waiters.push(wake);
    });
  }

  release(): void {
    this.active--;
    while (this.active < this.size() && this.waiters.length > 0) this.waiters.shift()!();
  }
}

/**
 * The fleet-wide ERP call budget (redis-semaphore's RedisSemaphore: a sorted set of permit holders, each entry
 * expiring `leaseMs` after its last refresh). Sits in the wire beside the process limiter, so every attempt, login and
 * background refresh takes a permit, and a replica killed while holding permits gives them back within `leaseMs`.
 *
 * Redis unreachable (or failing while a call asks): the call takes a per-replica share instead, floor(limit / N),
 * at least 1, where N is the number of replicas this one last saw alive through Redis (1 if it never reached it).
 * A permit lost while its call is on the wire (its refresh failed: Redis gone) cannot recall the call: it is counted
 * ('lost') and the call finishes.
 */
export class FleetPermits implements ErpLayer {
  private readonly key: string;
  private readonly membersKey: string;
  private readonly id = randomUUID();
  private replicas = 1;
  private held = 0;
  private waiting = 0;
  private readonly share: LocalShare;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly observer: FleetObserver;

  constructor(
    private readonly redis: FleetRedis,
    private readonly options: FleetPermitOptions,
  ) {
    this.key = redis.key('permits');
    this.membersKey = redis.key('replicas');
    this.observer = options.observer ?? {};
    this.share = new LocalShare(() => this.fallbackShare);
    const every = options.heartbeatMs ?? 2000;
    const beat = () => {
      void this.redis
        .run('permits.members', (c) => c.eval(MEMBERSHIP, 1, this.membersKey, this.id, String(3 * every)))
        .then((n) => {
          this.replicas = Math.max(1, Number(n));
        })
        .catch(() => undefined);
    };
    beat();
    this.heartbeat = setInterval(beat, every);
    this.heartbeat.unref();
  }

  /** What each replica may have in flight while Redis is unreachable. */
  get fallbackShare(): number {
    return Math.max(1, Math.floor(this.options.limit / this.replicas));
  }

  wrap(next: Send): Send {
    return async (call) => {
      const semaphore = new RedisSemaphore(this.redis.client, this.key, this.options.limit, {
        lockTimeout: this.options.leaseMs,
        acquireTimeout: this.options.maxWaitMs,
        retryInterval: 20,
        refreshInterval: Math.max(100, Math.floor(this.options.leaseMs / 3)),
        onLockLost: () => this.observer.permitEvent?.('lost'),
      });
      let acquired: boolean | 'aborted';
      this.waiting++;
      this.report();
      try {
        // A caller that leaves is not a Redis failure: it must not count towards pausing Redis for everyone.
        acquired = await this.redis.run('permits.acquire', () =>
          semaphore.tryAcquire(abortSignalOf(call.signal)).catch((e: unknown) => {
            if (call.signal?.aborted) return 'aborted' as const;
            throw e;
          }),
        );
      } catch {
        if (call.signal?.aborted) throw new ErpAbortedError({ phase: 'queued', path: call.path });
        return this.viaShare(call, next);
      } finally {
        this.waiting--;
        this.report();
      }
      if (acquired === 'aborted') throw new ErpAbortedError({ phase: 'queued', path: call.path });
      if (!acquired) {
        this.observer.permitEvent?.('timeout');
        throw new ErpBusyError(`no fleet ERP call permit free within ${this.options.maxWaitMs} ms`, { path: call.path });
      }
      this.held++;
      this.report();
      try {
        return await next(call);
      } finally {
        this.held--;
        this.report();
        // An unreleased permit expires after leaseMs by itself.
        semaphore.release().catch(() => undefined);
      }
    };
  }

  close(): void {
    clearInterval(this.heartbeat);
  }

  private async viaShare(call: Parameters<Send>[0], next: Send): ReturnType<Send> {
    this.observer.permitEvent?.('fallback');
    if (!(await this.share.acquire(this.options.maxWaitMs, call.signal))) {
      if (call.signal?.aborted) throw new ErpAbortedError({ phase: 'queued', path: call.path });
      throw new ErpBusyError(`no ERP call slot of this replica's fleet share (${this.fallbackShare}) within ${this.options.maxWaitMs} ms`, { path: call.path });
    }
    try {
      return await next(call);
    } finally {
      this.share.release();
    }
  }

  private report(): void {
    this.observer.permits?.(this.held, this.waiting);
  }
}
