import type { ChangeKind, FeedMessage } from './model';

/**
 * What the change feed asks of the world around it, so that one process or a fleet of replicas can run it: the
 * composition root hands in implementations. In one process (memory.ts) every key's lease is this process's and the
 * bus is a local fan-out; a fleet (src/fleet) keeps the lease in Redis and carries the bus over Redis pub/sub.
 */

/** Who polls a key: at most one holder at a time, so N replicas with subscribers of one key cost one poller. */
export interface FeedLease {
  /**
   * Take or keep the key: true while this process holds it (then it polls), false while another does. Called before
   * every poll, so it is also the renewal; a holder that stops calling (it died) loses the key after the
   * implementation's lease time, and the next caller takes it over.
   */
  acquire(key: string): Promise<boolean>;
  /** Give the key up at once (the last subscriber left, or shutdown), so another process can take it without waiting. */
  release(key: string): Promise<void>;
}

/** A subscription to one key's messages; `close` stops delivery. */
export interface BusSubscription {
  close(): void | Promise<void>;
}

export interface BusListener {
  message(message: FeedMessage): void;
  /**
   * The bus may have lost messages (a pub/sub connection that dropped and came back): the subscriber side asks for a
   * fresh snapshot, so a change is delivered late rather than never. A bus that cannot lose messages never calls it.
   */
  gap?(): void;
}

/** Carries messages from a key's poller to every process with subscribers of that key (the poller's own included). */
export interface FeedBus {
  publish(message: FeedMessage): void | Promise<void>;
  subscribe(key: string, listener: BusListener): BusSubscription;
}

export type PollOutcome = 'ok' | 'error' | 'unstable' | 'deferred' | 'standby';

/** What the feed reports about itself (metrics and logs are outside the domain). Every member is optional. */
export interface FeedObserver {
  /** One poll attempt: ok, error (the ERP failed: backing off), unstable (the list moved while paging: discarded),
   * deferred (user requests had the ERP's call slots), standby (another process holds the key's lease). */
  poll?(outcome: PollOutcome, detail?: { code?: string; durationMs?: number }): void;
  /** Events handed to subscribers, by kind (one per subscriber). */
  events?(kind: ChangeKind, count: number): void;
  /** Subscriptions and pollers (keys with at least one subscriber) of this process, after each change. */
  gauges?(subscriptions: number, pollers: number): void;
  /** A subscription ended other than by its client: overflow, unauthenticated, shutdown. */
  ended?(reason: 'overflow' | 'unauthenticated' | 'shutdown'): void;
  /** A subscription was refused at its start by a limit. */
  refused?(limit: string): void;
}
