import { ChangeFeed, FeedLimitError, FeedOverflowError, InProcessBus, type FeedBus, type FeedLease, type FeedMessage, type ServiceChange, type WindowRead, type WindowSource } from '../src/domain/feed';
import { WindowView } from '../src/domain/feed/snapshot';
import { MappedService } from '../src/domain/model';
import type { SessionSource } from '../src/erp/call';
import { until } from './helpers';

/**
 * The change feed's domain on its own, through its ports: what the fleet part (a Redis lease and pub/sub bus) will plug
 * into. Two ChangeFeeds sharing one bus and one lease stand for two replicas; a bus that drops a message stands for a
 * pub/sub reconnect. The window is a stand-in source the test edits.
 */
class FakeWindow implements WindowSource {
  readonly rows = new Map<string, Record<string, string>>();
  reads = 0;
  failing = false;

  constructor(count: number) {
    for (let i = 1; i <= count; i++) this.rows.set(String(i), { ord: String(i), title: `t${i}` });
  }

  canSortById(): boolean {
    return true;
  }

  read(): Promise<WindowRead> {
    this.reads++;
    if (this.failing) return Promise.reject(new Error('ERP down'));
    const rows = [...this.rows.entries()].sort((a, b) => Number(b[0]) - Number(a[0])).map(([id, row]) => ({ id, row: { ...row } }));
    return Promise.resolve({ rows, stable: true });
  }

  toService(row: Readonly<Record<string, string>>) {
    return new MappedService(row.ord ?? '', 'list', {}, []);
  }
}

/** One lease store shared by "replicas": a key is held by its first claimer until released. */
class SharedLease {
  readonly holders = new Map<string, string>();
  for(owner: string): FeedLease {
    return {
      acquire: (key) => {
        const holder = this.holders.get(key) ?? owner;
        this.holders.set(key, holder);
        return Promise.resolve(holder === owner);
      },
      release: (key) => {
        if (this.holders.get(key) === owner) this.holders.delete(key);
        return Promise.resolve();
      },
    };
  }
}

const auth: SessionSource = { identity: 'service:test', token: () => Promise.resolve('t'), renew: () => Promise.resolve('t') };

function feed(source: WindowSource, extra: Partial<ConstructorParameters<typeof ChangeFeed>[0]> = {}): ChangeFeed {
  return new ChangeFeed({
    source,
    rules: { maxPageSize: 100, sortable: () => true },
    intervalMs: 10,
    maxRows: 50,
    buffer: { events: 100, bytes: 1 << 20 },
    limits: { subscriptions: 100, subscriptionsPerIdentity: 100, pollers: 10, pollersPerIdentity: 10 },
    pollTimeoutMs: 1000,
    maxConcurrentPolls: 2,
    ...extra,
  });
}

/** Pulls a subscription's events in the background, as a transport would. */
function collect(events: AsyncIterableIterator<ServiceChange>): { got: string[]; error?: unknown } {
  const out: { got: string[]; error?: unknown } = { got: [] };
  void (async () => {
    try {
      for await (const e of events) out.got.push(`${e.kind}:${e.id}`);
    } catch (error) {
      out.error = error;
    }
  })();
  return out;
}

const feeds: ChangeFeed[] = [];
afterEach(async () => {
  await Promise.all(feeds.splice(0).map((f) => f.close()));
});
const track = (f: ChangeFeed) => (feeds.push(f), f);

describe('WindowView', () => {
  it('takes the first window as the baseline, then reports ADDED/UPDATED (newest first) and REMOVED', () => {
    const view = new WindowView();
    expect(view.replace([{ id: '2', row: { ord: '2', t: 'a' } }, { id: '1', row: { ord: '1', t: 'b' } }])).toEqual([]);
    const changes = view.replace([{ id: '3', row: { ord: '3', t: 'c' } }, { id: '2', row: { ord: '2', t: 'A' } }]);
    expect(changes.map((c) => `${c.kind}:${c.id}`)).toEqual(['ADDED:3', 'UPDATED:2', 'REMOVED:1']);
  });

  it('compares raw row values whatever the column order, and applies a change once however often it arrives', () => {
    const view = new WindowView();
    view.replace([{ id: '1', row: { ord: '1', t: 'b' } }]);
    expect(view.replace([{ id: '1', row: { t: 'b', ord: '1' } }])).toEqual([]);
    const change = { kind: 'UPDATED' as const, id: '1', row: { ord: '1', t: 'new' } };
    expect(view.apply(change)?.kind).toBe('UPDATED');
    expect(view.apply(change)).toBeUndefined();
    expect(view.apply({ kind: 'REMOVED', id: '1' })?.kind).toBe('REMOVED');
    expect(view.apply({ kind: 'REMOVED', id: '1' })).toBeUndefined();
  });
});

describe('ChangeFeed through its ports', () => {
  it('subscribers of one key share one poller; a new key is another; limits refuse with FeedLimitError', async () => {
    const source = new FakeWindow(5);
    const f = track(feed(source, { limits: { subscriptions: 3, subscriptionsPerIdentity: 3, pollers: 2, pollersPerIdentity: 2 } }));
    const a = collect(f.subscribe(auth, null));
    collect(f.subscribe(auth, { urgencyIds: ['2', '1'] }));
    expect(() => f.subscribe(auth, { urgencyIds: ['3'] })).toThrow(FeedLimitError);
    expect(() => f.subscribe(auth, { urgencyIds: ['3'] })).toThrow(expect.objectContaining({ limit: 'pollers' }));
    // The same filter in another order is the same key: joins it.
    collect(f.subscribe(auth, { urgencyIds: ['1', '2'] }));
    expect(f.stats()).toMatchObject({ subscriptions: 3, pollers: 2 });
    expect(() => f.subscribe(auth, null)).toThrow(expect.objectContaining({ limit: 'subscriptions' }));
    await until(() => source.reads >= 4, 'polls');
    source.rows.set('6', { ord: '6', title: 'new' });
    await until(() => a.got.includes('ADDED:6'), 'ADDED');
  });

  it('a consumer that does not read ends with FeedOverflowError past its event bound; its buffer is dropped', async () => {
    const source = new FakeWindow(5);
    const f = track(feed(source, { buffer: { events: 3, bytes: 1 << 20 } }));
    const events = f.subscribe(auth, null);
    await until(() => source.reads >= 2, 'baseline');
    for (let i = 6; i <= 10; i++) source.rows.set(String(i), { ord: String(i), title: 'x' });
    await until(() => f.stats().subscriptions === 0, 'overflow ended it');
    expect(f.stats().bufferedEvents).toBe(0);
    await expect(events.next()).rejects.toBeInstanceOf(FeedOverflowError);
    await expect(events.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('after a bus that lost a message, the gap in the sequence asks for a snapshot and the lost change arrives', async () => {
    const source = new FakeWindow(5);
    const inner = new InProcessBus();
    let drop = false;
    const lossy: FeedBus = {
      publish: (m: FeedMessage) => {
        if (drop && m.type === 'changes') {
          drop = false;
          return;
        }
        inner.publish(m);
      },
      subscribe: (key, listener) => inner.subscribe(key, listener),
    };
    const f = track(feed(source, { bus: lossy }));
    const a = collect(f.subscribe(auth, null));
    await until(() => source.reads >= 2, 'baseline');
    drop = true;
    source.rows.set('6', { ord: '6', title: 'lost on the bus' });
    await until(() => !drop, 'the message was dropped');
    source.rows.set('7', { ord: '7', title: 'next' });
    await until(() => a.got.includes('ADDED:7') && a.got.includes('ADDED:6'), 'both, the lost one through the snapshot');
    expect(a.got.filter((g) => g === 'ADDED:6')).toHaveLength(1);
  });

  it('two replicas on one bus and lease: one poller for both; when its holder goes, the other takes over and loses nothing', async () => {
    const source = new FakeWindow(5);
    const bus = new InProcessBus();
    const lease = new SharedLease();
    const outcomes = { A: [] as string[], B: [] as string[] };
    const first = feed(source, { bus, lease: lease.for('A'), observer: { poll: (o) => outcomes.A.push(o) } });
    const second = track(feed(source, { bus, lease: lease.for('B'), observer: { poll: (o) => outcomes.B.push(o) } }));
    const onFirst = collect(first.subscribe(auth, null));
    await until(() => source.reads >= 2, 'A polls');
    const onSecond = collect(second.subscribe(auth, null));
    source.rows.set('6', { ord: '6', title: 'seen by both' });
    await until(() => onFirst.got.includes('ADDED:6') && onSecond.got.includes('ADDED:6'), 'both replicas');
    // Only A read the ERP; B stood by.
    await until(() => outcomes.B.includes('standby'), 'B stands by');
    expect(outcomes.B).not.toContain('ok');
    // A stops (its lease released); a change made meanwhile reaches B's subscriber once B polls.
    await first.close();
    source.rows.delete('2');
    await until(() => onSecond.got.includes('REMOVED:2'), 'B took over');
    expect(onSecond.got).toEqual(['ADDED:6', 'REMOVED:2']);
    expect(lease.holders.get([...lease.holders.keys()][0]!)).toBe('B');
  });

  it('ERP errors back off and the subscription stays open; the diff after recovery reports what changed', async () => {
    const source = new FakeWindow(5);
    const f = track(feed(source));
    const a = collect(f.subscribe(auth, null));
    await until(() => source.reads >= 2, 'baseline');
    source.failing = true;
    const failedFrom = source.reads;
    source.rows.set('9', { ord: '9', title: 'during' });
    await until(() => source.reads >= failedFrom + 3, 'failing polls');
    source.failing = false;
    await until(() => a.got.includes('ADDED:9'), 'after recovery');
    expect(a.error).toBeUndefined();
  });
});
