import type { AfterSaleService } from '../model';
import { FeedOverflowError } from './errors';
import type { ChangeKind, ListRow, ServiceChange } from './model';

/** An event as a key's subscribers share it, before a subscription gives it its own cursor. */
export interface FeedEvent {
  kind: ChangeKind;
  id: string;
  service: AfterSaleService | null;
  /** What holding it may cost (eventBytes). */
  bytes: number;
}

/**
 * Estimated heap bytes one buffered event may keep alive: the raw row (UTF-16 strings, a property each) and the
 * service mapped from it, plus the event itself. Counted in full for every subscriber that holds it, since the last
 * one to take it keeps it all.
 */
export function eventBytes(row: ListRow | undefined): number {
  let cells = 0;
  for (const [column, value] of Object.entries(row ?? {})) cells += 2 * (column.length + value.length) + 64;
  return 512 + 2 * cells;
}

export interface BufferLimits {
  /** ZB_FEED_BUFFER_EVENTS */
  events: number;
  /** ZB_FEED_BUFFER_BYTES */
  bytes: number;
}

/** Why a subscription left its key: its client went, it fell behind, its session was refused, or shutdown. */
export type LeaveReason = 'client' | 'overflow' | 'unauthenticated' | 'shutdown';

/**
 * One subscription: an async iterator over its key's events, with a buffer bounded in events and in bytes for a
 * consumer slower than the feed. Past either bound the subscription ends with FeedOverflowError (typed, retriable):
 * its buffer is dropped at once, so a consumer that never reads holds at most the bound, never more. Cursors are its
 * own sequence, fixed-width base 36, so they are distinct and sort in event order.
 */
export class SubscriberQueue implements AsyncIterableIterator<ServiceChange> {
  private items: FeedEvent[] = [];
  private heldBytes = 0;
  private waiting: { resolve: (r: IteratorResult<ServiceChange>) => void; reject: (e: unknown) => void } | undefined;
  private failure: Error | undefined;
  /** No more events will come: the buffer drains, then the iterator is done. */
  private ending = false;
  private finished = false;
  private sequence = 0;

  constructor(
    private readonly limits: BufferLimits,
    private readonly onLeave: (queue: SubscriberQueue, reason: LeaveReason) => void,
  ) {}

  /** Bytes and events waiting for this subscriber. */
  get buffered(): { events: number; bytes: number } {
    return { events: this.items.length, bytes: this.heldBytes };
  }

  get open(): boolean {
    return !this.finished && !this.ending && !this.failure;
  }

  push(event: FeedEvent): void {
    if (!this.open) return;
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting.resolve({ value: this.change(event), done: false });
      return;
    }
    if (this.items.length + 1 > this.limits.events || this.heldBytes + event.bytes > this.limits.bytes) {
      this.fail(new FeedOverflowError(this.limits), 'overflow');
      return;
    }
    this.items.push(event);
    this.heldBytes += event.bytes;
  }

  /** Ends the subscription with `error` (its next read rejects with it); what it had buffered is dropped. */
  fail(error: Error, reason: Exclude<LeaveReason, 'client' | 'shutdown'>): void {
    if (!this.open) return;
    this.items = [];
    this.heldBytes = 0;
    this.failure = error;
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      this.failure = undefined;
      this.finished = true;
      waiting.reject(error);
    }
    this.onLeave(this, reason);
  }

  /** Ends the subscription cleanly (shutdown): what is buffered is still handed out, then the iterator is done. */
  end(): void {
    if (!this.open) return;
    this.ending = true;
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      this.finished = true;
      waiting.resolve({ value: undefined, done: true });
    }
    this.onLeave(this, 'shutdown');
  }

  next(): Promise<IteratorResult<ServiceChange>> {
    const event = this.items.shift();
    if (event) {
      this.heldBytes -= event.bytes;
      return Promise.resolve({ value: this.change(event), done: false });
    }
    if (this.failure) {
      const failure = this.failure;
      this.failure = undefined;
      this.finished = true;
      return Promise.reject(failure);
    }
    if (this.finished || this.ending) {
      this.finished = true;
      return Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiting) return Promise.reject(new Error('SubscriberQueue: next() called again before the previous one settled'));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** The client left (unsubscribed, disconnected): nothing more is kept for it. */
  return(): Promise<IteratorResult<ServiceChange>> {
    const wasOpen = this.open;
    this.finished = true;
    this.items = [];
    this.heldBytes = 0;
    this.failure = undefined;
    if (this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting.resolve({ value: undefined, done: true });
    }
    if (wasOpen) this.onLeave(this, 'client');
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<ServiceChange>> {
    return this.return();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private change(event: FeedEvent): ServiceChange {
    const cursor = (this.sequence++).toString(36).padStart(10, '0');
    return { kind: event.kind, id: event.id, service: event.service, cursor };
  }
}
