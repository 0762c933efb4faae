import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { SessionSource } from '../../erp/call';
import { parseListInput, type ListRules, type ServiceFilter } from '../filter';
import { FeedClosedError, FeedLimitError, type FeedLimit } from './errors';
import { InProcessBus, InProcessLease } from './memory';
import type { ServiceChange } from './model';
import { Poller } from './poller';
import type { FeedBus, FeedLease, FeedObserver } from './ports';
import { SubscriberQueue, type BufferLimits, type LeaveReason } from './queue';
import type { WindowSource } from './source';
import { Topic } from './topic';

export interface FeedLimits {
  /** ZB_FEED_MAX_SUBSCRIPTIONS: subscriptions of this process. */
  subscriptions: number;
  /** ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY */
  subscriptionsPerIdentity: number;
  /** ZB_FEED_MAX_POLLERS: keys (identity + filter) this process watches. */
  pollers: number;
  /** ZB_FEED_MAX_POLLERS_PER_IDENTITY: distinct filters one identity may have watched. */
  pollersPerIdentity: number;
}

export interface ChangeFeedOptions {
  source: WindowSource;
  /** The list's own rules: the filter is checked by the same `parseListInput` as `afterSaleServices`. */
  rules: ListRules;
  /** ZB_FEED_POLL_MS */
  intervalMs: number;
  /** ZB_FEED_MAX_ROWS */
  maxRows: number;
  buffer: BufferLimits;
  limits: FeedLimits;
  /** Deadline of one poll, all its pages. */
  pollTimeoutMs: number;
  /** Polls in flight at once in this process (a share of the ERP call slots: user requests keep the rest). */
  maxConcurrentPolls: number;
  /** Whether the ERP call slots have room for a poll now (see PollerSettings.headroom); always when absent. */
  headroom?: () => boolean;
  /** Who polls which key: this process alone unless a fleet lease is given. */
  lease?: FeedLease;
  /** How messages reach subscribers: in process unless a fleet bus is given. */
  bus?: FeedBus;
  observer?: FeedObserver;
  random?: () => number;
}

/** Same filter, same key: object keys and id lists in one order (ids match as a set), texts exactly as given. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical).sort();
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, canonical((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/** A key names no one: a hash of the identity (itself a hash for user sessions) and the normalised filter. */
export function feedKey(identity: string, filter: ServiceFilter | null | undefined): string {
  return createHash('sha256').update(identity).update('\n').update(JSON.stringify(canonical(filter ?? {}))).digest('hex').slice(0, 32);
}

/**
 * The change feed of after-sales services: one poller per (ERP identity, normalised filter) while at least one
 * subscriber needs it, its events shared by all of them, stopped (its poll in flight aborted) as soon as the last one
 * leaves. Subscriptions and keys are bounded per process and per identity (FeedLimitError). Process-wide, built once
 * by the composition root; transports reach it through each subscription's context (scope.ts).
 */
export class ChangeFeed {
  private readonly topics = new Map<string, Topic>();
  private readonly perIdentity = new Map<string, { subscriptions: number; pollers: number }>();
  private readonly lease: FeedLease;
  private readonly bus: FeedBus;
  private readonly observer: FeedObserver;
  private readonly slots: ReturnType<typeof pLimit>;
  private readonly pageSize: number;
  private subscriptions = 0;
  private closed = false;

  constructor(private readonly options: ChangeFeedOptions) {
    this.lease = options.lease ?? new InProcessLease();
    this.bus = options.bus ?? new InProcessBus();
    this.observer = options.observer ?? {};
    this.slots = pLimit(Math.max(1, options.maxConcurrentPolls));
    this.pageSize = Math.max(1, Math.min(options.maxRows, options.rules.maxPageSize));
  }

  /**
   * A new subscription to the services `filter` matches, as `auth` sees them. Checks the filter (InputError, as the
   * list) and the bounds (FeedLimitError) before anything starts; the first subscriber of a key starts its poller,
   * whose first poll is the baseline (no events).
   */
  subscribe(auth: SessionSource, filter: ServiceFilter | null | undefined): AsyncIterableIterator<ServiceChange> {
    const sort = this.options.source.canSortById() ? ({ field: 'id', direction: 'DESC' } as const) : null;
    const query = parseListInput({ filter: filter ?? null, page: 1, pageSize: this.pageSize, sort }, this.options.rules);
    const identity = auth.identity;
    const key = feedKey(identity, query.filter);
    const mine = this.perIdentity.get(identity) ?? { subscriptions: 0, pollers: 0 };
    const { limits } = this.options;
    let topic = this.topics.get(key);
    if (this.closed) throw new FeedClosedError();
    if (this.subscriptions >= limits.subscriptions) this.refuse('subscriptions', limits.subscriptions);
    if (mine.subscriptions >= limits.subscriptionsPerIdentity) this.refuse('subscriptionsPerIdentity', limits.subscriptionsPerIdentity);
    if (!topic) {
      if (this.topics.size >= limits.pollers) this.refuse('pollers', limits.pollers);
      if (mine.pollers >= limits.pollersPerIdentity) this.refuse('pollersPerIdentity', limits.pollersPerIdentity);
      const poller = new Poller({ key, auth, query, requestId: `feed:${key.slice(0, 12)}` }, this.options.source, this.lease, this.bus, {
        intervalMs: this.options.intervalMs,
        maxRows: this.options.maxRows,
        pollTimeoutMs: this.options.pollTimeoutMs,
        random: this.options.random ?? Math.random,
        headroom: this.options.headroom ?? (() => true),
        slots: this.slots,
        observer: this.observer,
      });
      topic = new Topic(key, identity, poller, this.bus, this.options.source, this.observer);
      this.topics.set(key, topic);
      mine.pollers++;
      topic.start();
    }
    const joined = topic;
    const queue = new SubscriberQueue(this.options.buffer, (q, reason) => this.leave(joined, q, reason));
    joined.add(queue);
    this.subscriptions++;
    mine.subscriptions++;
    this.perIdentity.set(identity, mine);
    this.report();
    return queue;
  }

  /**
   * `handleService` SAVED service `id` as `identity`: the keys of that identity whose window holds it report UPDATED at
   * once (other identities' views see it at their next poll, read with their own sessions).
   */
  touched(identity: string, id: string): void {
    for (const topic of this.topics.values()) if (topic.identity === identity) topic.touched(id);
  }

  /** Shutdown: every subscription ends cleanly (its client gets `complete`), every poller stops. */
  async close(): Promise<void> {
    this.closed = true;
    const topics = [...this.topics.values()];
    for (const topic of topics) topic.endAll();
    await Promise.all(topics.map((t) => t.stop()));
  }

  /** What this process holds: for metrics and tests. */
  stats(): { subscriptions: number; pollers: number; bufferedEvents: number; bufferedBytes: number } {
    let bufferedEvents = 0;
    let bufferedBytes = 0;
    for (const topic of this.topics.values()) {
      for (const queue of topic.queues()) {
        bufferedEvents += queue.buffered.events;
        bufferedBytes += queue.buffered.bytes;
      }
    }
    return { subscriptions: this.subscriptions, pollers: this.topics.size, bufferedEvents, bufferedBytes };
  }

  private refuse(limit: FeedLimit, max: number): never {
    this.observer.refused?.(limit);
    throw new FeedLimitError(limit, max);
  }

  private leave(topic: Topic, queue: SubscriberQueue, reason: LeaveReason): void {
    topic.remove(queue);
    this.subscriptions--;
    const mine = this.perIdentity.get(topic.identity);
    if (mine) mine.subscriptions--;
    if (reason !== 'client') this.observer.ended?.(reason);
    if (topic.size === 0 && this.topics.get(topic.key) === topic) {
      this.topics.delete(topic.key);
      if (mine) mine.pollers--;
      void topic.stop();
    }
    if (mine && mine.subscriptions <= 0 && mine.pollers <= 0) this.perIdentity.delete(topic.identity);
    this.report();
  }

  private report(): void {
    this.observer.gauges?.(this.subscriptions, this.topics.size);
  }
}
