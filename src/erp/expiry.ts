/**
 * Something with a time limit: `expire()` is called once `expiresAt` has passed, unless it left first. On
 * `performance.now()`'s clock, which a wall-clock step (NTP, a VM resumed) does not move, as setTimeout's does not.
 */
export interface Expiring {
  expiresAt: number;
  expire(): void;
}

/** The longest delay setTimeout keeps (2^31-1 ms, about 24.8 days): a longer one fires at once, with a warning. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Time limits of ONE length for things that start in order: the requests' deadlines (ZB_REQUEST_DEADLINE_MS), the
 * transport's attempts on the wire (ZB_TIMEOUT_MS), the limiter's queue (ZB_QUEUE_TIMEOUT_MS). With a single length
 * the first in is the first to expire, so one timer, armed for the oldest, serves them all, where a
 * setTimeout/clearTimeout pair each would cost a Timeout object and ~0.5-1 µs per ERP call. The items are kept in a Set, whose insertion order is their order of expiry; a queue can take
 * them from the front (`shift`).
 */
export class ExpiryQueue<T extends Expiring> {
  private readonly items = new Set<T>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly limitMs: number) {}

  get size(): number {
    return this.items.size;
  }

  add(item: T): void {
    item.expiresAt = performance.now() + this.limitMs;
    this.items.add(item);
    if (this.timer === undefined) this.arm(this.limitMs);
  }

  /** Takes `item` out before it expires; the timer, if it was the oldest's, finds the next one when it fires. */
  delete(item: T): boolean {
    return this.items.delete(item);
  }

  /** The oldest item, taken out. */
  shift(): T | undefined {
    for (const item of this.items) {
      this.items.delete(item);
      return item;
    }
    return undefined;
  }

  private arm(delayMs: number): void {
    // Longer limits are reached in steps: the sweep re-arms for the rest.
    this.timer = setTimeout(this.sweep, Math.min(delayMs, MAX_TIMER_MS));
    // A pending limit alone never keeps the process alive.
    this.timer.unref();
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    const now = performance.now();
    // One item's expiry that throws (a watcher's bug) must not leave the others unexpired or the timer unarmed.
    let failure: { error: unknown } | undefined;
    for (const item of this.items) {
      // A timer may fire a little before its time by this clock: the rest waits for the next round.
      if (item.expiresAt > now) {
        // An expiry above may have added an item, and armed the timer already.
        if (this.timer === undefined) this.arm(item.expiresAt - now);
        break;
      }
      this.items.delete(item);
      try {
        item.expire();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  };
}
