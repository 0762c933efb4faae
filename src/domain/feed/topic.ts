import { MappedService, type AfterSaleService } from '../model';
import { FeedUnauthenticatedError } from './errors';
import type { FeedMessage, RowChange } from './model';
import type { BusSubscription, FeedBus, FeedObserver } from './ports';
import type { Poller } from './poller';
import { eventBytes, type SubscriberQueue } from './queue';
import { WindowView } from './snapshot';
import type { WindowSource } from './source';

/** A service just saved through this subgraph: every field comes from a fresh detail read, through the loader. */
function savedService(id: string): AfterSaleService {
  return new MappedService(id, 'list', {}, []);
}

/**
 * One key (identity + normalised filter) in this process: its subscribers, its view of the window, and its poller
 * (which polls only while this process holds the key's lease). Messages arrive from the bus, whoever polled: the view
 * turns each into the changes it means for these subscribers, once each, and a gap in a poller's sequence (a bus
 * that lost messages) asks the poller for a whole snapshot.
 */
export class Topic {
  private readonly view = new WindowView();
  private readonly subscribers = new Set<SubscriberQueue>();
  private subscription: BusSubscription | undefined;
  private epoch: string | undefined;
  private seq = 0;
  /** A snapshot was asked for and has not come yet. */
  private syncing = false;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly key: string,
    readonly identity: string,
    private readonly poller: Poller,
    private readonly bus: FeedBus,
    private readonly source: WindowSource,
    private readonly observer: FeedObserver,
  ) {}

  get size(): number {
    return this.subscribers.size;
  }

  queues(): IterableIterator<SubscriberQueue> {
    return this.subscribers.values();
  }

  start(): void {
    // A gap may have swallowed the snapshot a sync in flight asked for: ask again rather than wait for it forever.
    this.subscription = this.bus.subscribe(this.key, { message: (m) => this.message(m), gap: () => this.requestSync(true) });
    this.poller.start();
    // Whoever polls this key (this process, or another that already does) sends its window: this side's baseline.
    this.requestSync();
  }

  add(queue: SubscriberQueue): void {
    this.subscribers.add(queue);
  }

  remove(queue: SubscriberQueue): void {
    this.subscribers.delete(queue);
  }

  /** A save through this subgraph: when this view holds the service, every subscriber side of the key hears of it. */
  touched(id: string): void {
    if (this.view.has(id)) void Promise.resolve(this.bus.publish({ type: 'touched', key: this.key, id })).catch(() => undefined);
  }

  /** Ends every subscription cleanly (buffered events are still handed out) and stops polling. */
  endAll(): void {
    for (const queue of [...this.subscribers]) queue.end();
  }

  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      await this.subscription?.close();
      await this.poller.stop();
    })());
  }

  private requestSync(again = false): void {
    if (this.syncing && !again) return;
    this.syncing = true;
    void Promise.resolve(this.bus.publish({ type: 'sync', key: this.key })).catch(() => {
      this.syncing = false;
    });
  }

  private message(m: FeedMessage): void {
    switch (m.type) {
      case 'snapshot':
        this.epoch = m.epoch;
        this.seq = m.seq;
        this.syncing = false;
        // The first one is this side's baseline (nothing to report); later ones report what this side missed.
        this.deliver(this.view.replace(m.rows));
        return;
      case 'changes': {
        if (!this.view.ready) {
          // No view yet (this side joined a key another process polls): the poller's own reading holds until the
          // snapshot asked for at start arrives.
          this.deliver(m.changes);
          this.requestSync();
          return;
        }
        if (m.epoch !== this.epoch || m.seq !== this.seq + 1) this.requestSync();
        this.epoch = m.epoch;
        this.seq = m.seq;
        const seen: RowChange[] = [];
        for (const change of m.changes) {
          const mine = this.view.apply(change);
          if (mine) seen.push(mine);
        }
        this.deliver(seen);
        return;
      }
      case 'touched':
        if (!this.view.has(m.id)) return;
        this.deliver([{ kind: 'UPDATED', id: m.id }]);
        // The list may show more than the save (or no longer match the filter): look again now rather than later.
        this.poller.expedite(false);
        return;
      case 'sync':
        this.poller.expedite(true);
        return;
      case 'failed':
        for (const queue of [...this.subscribers]) queue.fail(new FeedUnauthenticatedError(), 'unauthenticated');
        return;
    }
  }

  private deliver(changes: readonly RowChange[]): void {
    if (changes.length === 0 || this.subscribers.size === 0) return;
    for (const change of changes) {
      const service = change.kind === 'REMOVED' ? null : change.row ? this.source.toService(change.row) : savedService(change.id);
      if (change.kind !== 'REMOVED' && !service) continue;
      const event = { kind: change.kind, id: change.id, service, bytes: eventBytes(change.row) };
      const queues = [...this.subscribers];
      for (const queue of queues) queue.push(event);
      this.observer.events?.(change.kind, queues.length);
    }
  }
}
