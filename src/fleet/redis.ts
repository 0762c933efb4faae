import { createHash } from 'node:crypto';
import Redis from 'ioredis';
import type { FleetObserver } from './observer';

export interface FleetRedisOptions {
  /** ZB_REDIS_URL. Never logged: it may carry a password. */
  url: string;
  /** ZB_REDIS_KEY_PREFIX: every key this process writes starts with it, so deployments can share one Redis. */
  keyPrefix: string;
  /** ZB_REDIS_COMMAND_TIMEOUT_MS: no command waits longer, so a frozen Redis never holds a request. */
  commandTimeoutMs: number;
  /** How long after failures in a row Redis is treated as down without asking it (a frozen Redis costs one timeout, not one per call). */
  pauseMs?: number;
  observer?: FleetObserver;
}

/** Redis is unreachable, frozen or paused after failures: the command was not answered (or not sent). */
export class RedisUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisUnavailableError';
  }
}

const FAILURES_BEFORE_PAUSE = 2;
/** The longest the first commands wait for the first connection attempt to succeed or fail. */
const STARTUP_BOUND_MS = 5000;

/** An error's code or first line, with anything URL-like cut out (a Redis URL may carry a password). */
export function redisReason(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown } | undefined;
  if (typeof err?.code === 'string') return err.code;
  const text = typeof err?.message === 'string' ? err.message : String(e);
  return text.split('\n')[0]!.replace(/rediss?:\/\/\S*/g, 'redis://…').slice(0, 200);
}

/**
 * The one Redis connection of a replica, for every fleet adapter. ioredis reconnects by itself (backoff up to 2 s,
 * forever); there is no offline queue, so a command while disconnected fails at once; every command has a timeout;
 * after failures in a row the adapters skip Redis for `pauseMs` (then one command probes it again). Adapters call
 * `run`, which measures and reports every command and turns any failure into RedisUnavailableError.
 */
export class FleetRedis {
  readonly client: Redis;
  private readonly prefix: string;
  private readonly observer: FleetObserver;
  private readonly pauseMs: number;
  private failures = 0;
  private pausedUntil = 0;
  private up = false;
  private lastReason: string | undefined = 'connecting';
  /** Until the first connection is made (or its bound passes): commands wait for it instead of failing. */
  private startup: Promise<void> | undefined;

  constructor(options: FleetRedisOptions) {
    this.prefix = options.keyPrefix;
    this.observer = options.observer ?? {};
    this.pauseMs = options.pauseMs ?? 1000;
    this.client = new Redis(options.url, {
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(1000, options.commandTimeoutMs * 4),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Reconnect forever, never faster than every 2 s once it has failed a while.
      retryStrategy: (times) => Math.min(100 * times, 2000),
      keepAlive: 10_000,
      lazyConnect: false,
    });
    // Without a listener every failed reconnect is an "Unhandled error event" on stderr.
    this.client.on('error', (e: unknown) => this.down(redisReason(e)));
    this.client.on('close', () => this.down('connection closed'));
    // Settled by the first attempt's outcome, not a clock alone: a process busy starting up may see its timer fire
    // before the connection's own events, and a replica that logged in alone there would kick the fleet's session.
    this.startup = new Promise<void>((resolve) => {
      const settle = () => {
        clearTimeout(timer);
        this.client.off('ready', settle);
        this.client.off('reconnecting', settle);
        this.client.off('end', settle);
        resolve();
      };
      const timer = setTimeout(settle, STARTUP_BOUND_MS);
      timer.unref();
      this.client.once('ready', settle);
      this.client.once('reconnecting', settle);
      this.client.once('end', settle);
    }).then(() => {
      this.startup = undefined;
    });
    this.client.on('ready', () => {
      this.failures = 0;
      this.pausedUntil = 0;
      if (!this.up) {
        this.up = true;
        this.lastReason = undefined;
        this.observer.redisState?.(true);
      }
    });
  }

  /** A key under this deployment's prefix. */
  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** A fixed-length digest for keys built from client input (idempotency keys, read keys): no user text in Redis key names. */
  static digest(text: string): string {
    return createHash('sha256').update(text).digest('base64url');
  }

  /** Connected, and not paused after failures: worth asking. */
  get available(): boolean {
    return this.client.status === 'ready' && Date.now() >= this.pausedUntil;
  }

  /** For readiness: 'ok', or why not (no credentials in it). */
  status(): { up: boolean; reason?: string } {
    if (this.client.status !== 'ready') return { up: false, reason: this.lastReason ?? this.client.status };
    // Until a command succeeds again, a failed one is the latest word on Redis (a frozen Redis keeps its socket open).
    if (this.failures > 0) return { up: false, reason: Date.now() < this.pausedUntil ? 'paused after command timeouts' : 'last command failed' };
    return { up: true };
  }

  async run<T>(op: string, command: (client: Redis) => Promise<T>): Promise<T> {
    // Right after start the connection is still being made: the first commands (the service login above all) wait
    // for it, bounded, rather than act as if Redis were down.
    if (this.startup) await this.startup;
    if (!this.available) {
      this.observer.redisCommand?.(op, 'skipped', 0);
      throw new RedisUnavailableError(`Redis unavailable (${this.status().reason ?? 'down'})`);
    }
    const started = performance.now();
    try {
      const result = await command(this.client);
      this.failures = 0;
      this.observer.redisCommand?.(op, 'ok', performance.now() - started);
      return result;
    } catch (e) {
      const reason = redisReason(e);
      const timeout = /timed out/i.test(reason);
      this.observer.redisCommand?.(op, timeout ? 'timeout' : 'error', performance.now() - started);
      if (++this.failures >= FAILURES_BEFORE_PAUSE) this.pausedUntil = Date.now() + this.pauseMs;
      throw new RedisUnavailableError(`Redis command ${op} failed: ${reason}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    try {
      await Promise.race([this.client.quit(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    } catch {
      // Already gone.
    }
    this.client.disconnect();
  }

  private down(reason: string): void {
    this.lastReason = reason;
    if (!this.up) return;
    this.up = false;
    this.observer.redisState?.(false, reason);
  }
}
