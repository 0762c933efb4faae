import { randomUUID } from 'node:crypto';
import type { CallContext } from '../../erp/client';
import type { SessionSource } from '../../erp/call';
import { ErpErrorCode, isErpError } from '../../erp/errors';
import type { ValidListQuery } from '../filter';
import type { FeedMessage } from './model';
import type { FeedBus, FeedLease, FeedObserver } from './ports';
import { WindowView } from './snapshot';
import type { WindowSource } from './source';

export interface PollerSettings {
  /** ZB_FEED_POLL_MS: the time between two polls of a key, jittered by +-20% so keys started together spread out. */
  intervalMs: number;
  /** ZB_FEED_MAX_ROWS: the window, newest first. */
  maxRows: number;
  /** Deadline of one poll, all its pages. */
  pollTimeoutMs: number;
  random: () => number;
  /**
   * Whether user requests leave room in the ERP call slots for a poll now. When not, the poll waits a quarter interval,
   * at most four times (one interval late at most: a feed that waited for an idle ERP forever would never report).
   */
  headroom: () => boolean;
  /** Runs one poll within the process's share of polls at once. */
  slots: <T>(run: () => Promise<T>) => Promise<T>;
  observer: FeedObserver;
}

/** The key a poller serves: one ERP identity's session and one normalised list query. */
export interface PollTarget {
  key: string;
  auth: SessionSource;
  query: ValidListQuery;
  /** Names the poll's ERP calls in logs and traces (`feed:<key>`); never the token. */
  requestId: string;
}

/** Polls deferred in a row for user requests before one goes anyway. */
const MAX_DEFERRALS = 4;

/**
 * A session the ERP refused and that cannot be renewed (a user's own, forwarded by the gateway) is final: the key's
 * subscriptions end as unauthenticated, and nothing falls back to another identity. The service account logs in again
 * by itself (its refusals back off in the session layer), so for it a refusal is one more ERP error.
 */
function refusesIdentity(e: unknown, auth: SessionSource): boolean {
  return isErpError(e) && (e.code === ErpErrorCode.Session || e.code === ErpErrorCode.Auth) && auth.renew === undefined;
}

/**
 * One key's poll loop, in the process that holds the key's lease: reads the window, diffs it against the previous
 * poll and publishes the differences on the bus (the first poll, and any a subscriber side asks for, as a whole
 * snapshot). ERP errors back off exponentially (bounded) and the loop goes on; the next successful poll diffs against
 * the last good one, so what changed during an outage is delivered once the ERP answers. Stopping aborts a poll in
 * flight at once.
 */
export class Poller {
  private readonly view = new WindowView();
  private readonly epoch = randomUUID();
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private stopped = false;
  private polling = false;
  private soon = false;
  private failures = 0;
  private deferrals = 0;
  private holding = false;
  /** The next poll publishes its whole window: the first one, after taking the lease over, and when asked. */
  private snapshotWanted = true;

  constructor(
    private readonly target: PollTarget,
    private readonly source: WindowSource,
    private readonly lease: FeedLease,
    private readonly bus: FeedBus,
    private readonly settings: PollerSettings,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** Polls as soon as possible: a save touched the key, or (`snapshot`) a subscriber side lost messages. */
  expedite(snapshot: boolean): void {
    if (snapshot) this.snapshotWanted = true;
    if (this.stopped) return;
    if (this.polling) this.soon = true;
    else this.schedule(0);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller.abort();
    if (this.holding) await this.lease.release(this.target.key).catch(() => undefined);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), Math.max(0, Math.round(delayMs)));
    // Pollers never keep a process alive on their own.
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped || this.polling) return;
    this.polling = true;
    let next: number;
    try {
      next = await this.poll();
    } catch {
      // poll() reports its own failures; nothing escapes a timer callback.
      next = this.settings.intervalMs;
    } finally {
      this.polling = false;
    }
    if (this.stopped) return;
    if (this.soon) {
      this.soon = false;
      next = 0;
    }
    this.schedule(next);
  }

  private jittered(ms: number): number {
    return ms * (0.8 + 0.4 * this.settings.random());
  }

  /** Exponential from one interval, doubling per failure in a row, at most 16 intervals (and 60 s unless the interval is longer). */
  private backoff(): number {
    const interval = this.settings.intervalMs;
    const cap = Math.max(interval, Math.min(16 * interval, 60_000));
    return Math.min(cap, interval * 2 ** Math.min(this.failures, 16)) * (0.5 + 0.5 * this.settings.random());
  }

  private call(): CallContext {
    // A poll is how the feed sees changes, so it reads the ERP, not the read cache (and refreshes what the cache keeps).
    return { auth: this.target.auth, signal: this.controller.signal, deadline: Date.now() + this.settings.pollTimeoutMs, requestId: this.target.requestId, fresh: true };
  }

  private async publish(message: FeedMessage): Promise<void> {
    await this.bus.publish(message);
  }

  /** One attempt; returns the delay before the next. */
  private async poll(): Promise<number> {
    const { intervalMs, observer } = this.settings;
    const key = this.target.key;
    let holds: boolean;
    try {
      holds = await this.lease.acquire(key);
    } catch {
      holds = false;
    }
    if (this.stopped) return intervalMs;
    if (!holds) {
      // Another process polls this key. Should it die, this one takes over and starts with a whole snapshot, which
      // every subscriber side diffs against its own view: the takeover loses nothing.
      this.holding = false;
      this.snapshotWanted = true;
      observer.poll?.('standby');
      return this.jittered(intervalMs);
    }
    this.holding = true;
    if (!this.settings.headroom() && this.deferrals < MAX_DEFERRALS) {
      this.deferrals++;
      observer.poll?.('deferred');
      return intervalMs / MAX_DEFERRALS;
    }
    this.deferrals = 0;
    const started = Date.now();
    try {
      const read = await this.settings.slots(() => this.source.read(this.call(), this.target.query, this.settings.maxRows));
      if (this.stopped) return intervalMs;
      if (!read.stable) {
        observer.poll?.('unstable', { durationMs: Date.now() - started });
        return intervalMs / MAX_DEFERRALS;
      }
      this.failures = 0;
      const changes = this.view.replace(read.rows);
      const origin = { key, epoch: this.epoch };
      const snapshot = this.snapshotWanted;
      this.snapshotWanted = false;
      try {
        // The changes first, then (when asked) the whole window: a side that has no view yet reports the changes as
        // they are and starts its view from the snapshot; a side that has one finds nothing new in the snapshot.
        if (changes.length > 0) await this.publish({ type: 'changes', ...origin, seq: ++this.seq, changes });
        if (snapshot) await this.publish({ type: 'snapshot', ...origin, seq: ++this.seq, rows: read.rows });
      } catch (e) {
        // A bus that failed to carry a message sends a whole snapshot next time, so no change is lost.
        this.snapshotWanted = true;
        throw e;
      }
      observer.poll?.('ok', { durationMs: Date.now() - started });
      return this.jittered(intervalMs);
    } catch (e) {
      if (this.stopped) return intervalMs;
      if (refusesIdentity(e, this.target.auth)) {
        observer.poll?.('error', { code: isErpError(e) ? e.code : 'unknown', durationMs: Date.now() - started });
        await Promise.resolve(this.bus.publish({ type: 'failed', key, reason: 'unauthenticated' })).catch(() => undefined);
        return this.backoff();
      }
      this.failures++;
      observer.poll?.('error', { code: isErpError(e) ? e.code : 'unknown', durationMs: Date.now() - started });
      return this.backoff();
    }
  }
}
