import type { BusListener, BusSubscription, FeedBus, FeedLease } from './ports';
import type { FeedMessage } from './model';

/** One process: every key it has subscribers for is its own to poll. */
export class InProcessLease implements FeedLease {
  acquire(): Promise<boolean> {
    return Promise.resolve(true);
  }
  release(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A local fan-out: a published message reaches this process's listeners of its key synchronously, in order, and is
 * never lost (so `gap` is never called). A listener that throws does not stop the others.
 */
export class InProcessBus implements FeedBus {
  private readonly listeners = new Map<string, Set<BusListener>>();

  publish(message: FeedMessage): void {
    const listeners = this.listeners.get(message.key);
    if (!listeners) return;
    for (const listener of [...listeners]) {
      try {
        listener.message(message);
      } catch {
        // One subscriber side's failure is its own; the others still get the message.
      }
    }
  }

  subscribe(key: string, listener: BusListener): BusSubscription {
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(listener);
    return {
      close: () => {
        set.delete(listener);
        if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
      },
    };
  }
}
