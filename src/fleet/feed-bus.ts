import type Redis from 'ioredis';
import type { BusListener, BusSubscription, FeedBus, FeedMessage } from '../domain/feed';
import type { FleetObserver } from './observer';
import { redisReason, type FleetRedis } from './redis';

export interface RedisFeedBusOptions {
  /** The largest message published, as JSON bytes (a snapshot of ZB_FEED_MAX_ROWS rows is the big one). */
  maxMessageBytes: number;
  observer?: FleetObserver;
}

/** A message over the bus's byte bound was not published; the poller sends a whole snapshot next (nothing is lost). */
export class FeedMessageTooLargeError extends Error {
  constructor(readonly bytes: number, readonly maxBytes: number) {
    super(`feed message of ${bytes} bytes is over the bus bound of ${maxBytes}`);
    this.name = 'FeedMessageTooLargeError';
  }
}

interface Channel {
  listeners: Set<BusListener>;
  /** The SUBSCRIBE in flight or done (never rejects): publishes of this key wait for it. */
  subscribed: Promise<void>;
}

const TYPES = new Set(['snapshot', 'changes', 'touched', 'sync', 'failed']);

/**
 * The feed's bus over Redis pub/sub: a channel per key (`<prefix>feed:<key>`, the key is already a hash), JSON
 * messages bounded in bytes. Publishing uses the replica's shared connection; receiving uses a dedicated connection in
 * subscriber mode (such a connection can do nothing else), subscribed to a key's channel while this replica has at
 * least one listener of it (refcounted), unsubscribed when the last leaves.
 *
 * Pub/sub loses what is published while a subscriber is disconnected: after every (re)connection of the subscriber
 * connection every channel is subscribed again and every listener hears `gap()`, so its side asks the poller for a
 * fresh snapshot and diffs it against its own view (late rather than never). A publish of a key this replica is still
 * subscribing to waits for that SUBSCRIBE, so the snapshot a new subscriber side asks for cannot pass it by.
 */
export class RedisFeedBus implements FeedBus {
  private readonly subscriber: Redis;
  private readonly channels = new Map<string, Channel>();
  private readonly observer: FleetObserver;
  private up = false;
  private reason: string | undefined = 'connecting';
  private closed = false;

  constructor(
    private readonly redis: FleetRedis,
    private readonly options: RedisFeedBusOptions,
  ) {
    this.observer = options.observer ?? {};
    // Same URL and bounds as the shared connection; channels are subscribed again by 'ready' below, not by ioredis,
    // so that a reconnection is always followed by the gap() that re-synchronises the listeners.
    this.subscriber = redis.client.duplicate({ autoResubscribe: false, lazyConnect: false });
    this.subscriber.on('error', (e: unknown) => this.down(redisReason(e)));
    this.subscriber.on('close', () => this.down('connection closed'));
    this.subscriber.on('ready', () => this.ready());
    this.subscriber.on('message', (channel: string, text: string) => this.received(channel, text));
  }

  /** For readiness: 'ok', or why this replica hears nothing from the feed's bus (never the URL). */
  status(): { up: boolean; reason?: string } {
    return this.up ? { up: true } : { up: false, reason: this.reason ?? this.subscriber.status };
  }

  async publish(message: FeedMessage): Promise<void> {
    const text = JSON.stringify(message);
    const bytes = Buffer.byteLength(text);
    if (bytes > this.options.maxMessageBytes) {
      // Refused, counted, and thrown: the poller then sends a whole snapshot at its next poll instead of losing it.
      this.observer.feedBus?.('oversize');
      throw new FeedMessageTooLargeError(bytes, this.options.maxMessageBytes);
    }
    const channel = this.channels.get(message.key);
    if (channel) await channel.subscribed;
    await this.redis.run('feed.publish', (c) => c.publish(this.channelName(message.key), text));
  }

  subscribe(key: string, listener: BusListener): BusSubscription {
    let channel = this.channels.get(key);
    if (!channel) {
      channel = { listeners: new Set(), subscribed: Promise.resolve() };
      this.channels.set(key, channel);
      channel.subscribed = this.command('feed.subscribe', (c) => c.subscribe(this.channelName(key)));
    }
    const joined = channel;
    joined.listeners.add(listener);
    let open = true;
    return {
      close: async () => {
        if (!open) return;
        open = false;
        joined.listeners.delete(listener);
        if (joined.listeners.size > 0 || this.channels.get(key) !== joined) return;
        this.channels.delete(key);
        await this.command('feed.unsubscribe', (c) => c.unsubscribe(this.channelName(key)));
      },
    };
  }

  /** Channels this replica is subscribed to (for tests). */
  keys(): string[] {
    return [...this.channels.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
    try {
      await Promise.race([this.subscriber.quit(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    } catch {
      // Already gone.
    }
    this.subscriber.disconnect();
  }

  private channelName(key: string): string {
    return this.redis.key('feed', key);
  }

  /** A command on the subscriber connection, measured and reported like the shared connection's; never rejects. */
  private async command(op: string, run: (c: Redis) => Promise<unknown>): Promise<void> {
    if (this.closed || this.subscriber.status !== 'ready') {
      // Not connected: 'ready' subscribes every channel that still has listeners.
      this.observer.redisCommand?.(op, 'skipped', 0);
      return;
    }
    const started = performance.now();
    try {
      await run(this.subscriber);
      this.observer.redisCommand?.(op, 'ok', performance.now() - started);
    } catch (e) {
      this.observer.redisCommand?.(op, /timed out/i.test(redisReason(e)) ? 'timeout' : 'error', performance.now() - started);
    }
  }

  private ready(): void {
    if (this.closed) return;
    this.up = true;
    this.reason = undefined;
    const keys = [...this.channels.keys()];
    if (keys.length === 0) return;
    const subscribed = this.command('feed.subscribe', (c) => c.subscribe(...keys.map((k) => this.channelName(k))));
    const listeners: BusListener[] = [];
    for (const channel of this.channels.values()) {
      channel.subscribed = subscribed;
      listeners.push(...channel.listeners);
    }
    // Whatever was published while this connection was down is lost to it: every listener re-synchronises (its sync
    // request waits for the SUBSCRIBE above, so the snapshot it asks for is heard).
    this.observer.feedBus?.('gap');
    for (const listener of listeners) {
      try {
        listener.gap?.();
      } catch {
        // One side's failure is its own.
      }
    }
  }

  private down(reason: string): void {
    this.reason = reason;
    this.up = false;
  }

  private received(channelName: string, text: string): void {
    const prefix = this.redis.key('feed', '');
    if (!channelName.startsWith(prefix)) return;
    const key = channelName.slice(prefix.length);
    const channel = this.channels.get(key);
    if (!channel) return;
    let message: FeedMessage;
    try {
      message = JSON.parse(text) as FeedMessage;
    } catch {
      this.observer.feedBus?.('invalid');
      return;
    }
    // Plain data from another replica of this deployment: the shape is checked enough that a stray publish on the
    // channel cannot reach the topic as something else.
    if (message === null || typeof message !== 'object' || !TYPES.has(message.type) || message.key !== key) {
      this.observer.feedBus?.('invalid');
      return;
    }
    for (const listener of [...channel.listeners]) {
      try {
        listener.message(message);
      } catch {
        // One subscriber side's failure is its own; the others still get the message.
      }
    }
  }
}
