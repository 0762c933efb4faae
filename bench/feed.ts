/**
 * `npx ts-node --transpile-only bench/feed.ts` (after `npm run build`): what the change feed costs the ERP. For 1, 100
 * and 1,000 graphql-ws subscribers over 1 and 10 filters, the list calls the subgraph makes, from the simulator's call
 * log, per poll and per minute at the default ZB_FEED_POLL_MS (5 s), beside the naive cost (one poll loop per
 * subscriber, the same pages each). The subgraph is `dist/main.js` in its own process (as deployed); the
 * subscribers share a few WebSocket connections (graphql-ws multiplexes), as a gateway's would.
 * The last line is a fleet: 2 replicas sharing a redis-server (ZB_REDIS_URL), the subscribers spread over both: one
 * poller for the fleet (skipped when redis-server is not installed).
 * Env: BENCH_FEED_POLL_MS (200: the interval while measuring), BENCH_SECONDS (5).
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startSimulator } from '../src/simulator/server';
import { redisServerAvailable, startRedis } from '../test/support/redis-server';
import { spawnSubgraph, type SubgraphProcess } from './subgraph-process';

const POLL_MS = Number(process.env.BENCH_FEED_POLL_MS ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const DEFAULT_POLL_MS = 5000;
const PER_CONNECTION = 50;

/** Ten distinct filters: five categories, pending or not. */
const FILTERS = Array.from({ length: 10 }, (_, i) => ({ categoryIds: [String((i % 5) + 1)], pendingOnly: i >= 5 }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function metric(url: string, name: string, label?: string): Promise<number> {
  const text = await (await fetch(url.replace(/\/graphql$/, '/metrics'))).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name) && (label === undefined || l.includes(label)))
    .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
}

/** The sum of a metric over every replica. */
async function total(subgraphs: SubgraphProcess[], name: string, label?: string): Promise<number> {
  return (await Promise.all(subgraphs.map((s) => metric(s.url, name, label)))).reduce((a, b) => a + b, 0);
}

async function run(subscribers: number, filters: number, erp: Awaited<ReturnType<typeof startSimulator>>, fleet?: { redisUrl: string; replicas: number }) {
  const subgraphs: SubgraphProcess[] = [];
  for (let i = 0; i < (fleet?.replicas ?? 1); i++) {
    subgraphs.push(
      await spawnSubgraph({
        erpUrl: erp.url,
        mode: 'product',
        env: {
          ZB_FEED_POLL_MS: String(POLL_MS),
          ZB_FEED_MAX_SUBSCRIPTIONS: '5000',
          ZB_FEED_MAX_SUBSCRIPTIONS_PER_IDENTITY: '5000',
          ZB_FEED_WS_MAX_CONNECTIONS: '1000',
          ZB_FEED_MAX_POLLERS_PER_IDENTITY: '64',
          ...(fleet ? { ZB_REDIS_URL: fleet.redisUrl } : {}),
        },
      }),
    );
  }
  const clients: Client[] = [];
  const stops: Array<() => void> = [];
  try {
    for (let i = 0; i < subscribers; i++) {
      if (i % PER_CONNECTION === 0) {
        // Connections alternate between the replicas.
        const subgraph = subgraphs[clients.length % subgraphs.length]!;
        clients.push(createClient({ url: subgraph.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 }));
      }
      const filter = FILTERS[i % filters];
      stops.push(
        clients[clients.length - 1]!.subscribe(
          { query: 'subscription($f: AfterSaleServiceFilter) { afterSaleServiceChanged(filter: $f) { kind id } }', variables: { f: filter } },
          { next: () => undefined, error: (e) => console.error('subscription error', e), complete: () => undefined },
        ),
      );
    }
    const until = Date.now() + 30_000;
    while ((await total(subgraphs, 'zb_feed_subscriptions')) < subscribers && Date.now() < until) await sleep(50);
    await sleep(2 * POLL_MS);
    erp.calls.clear();
    const polls0 = await total(subgraphs, 'zb_feed_polls_total', 'outcome="ok"');
    await sleep(SECONDS * 1000);
    const polls = (await total(subgraphs, 'zb_feed_polls_total', 'outcome="ok"')) - polls0;
    const calls = erp.calls.of('list').filter((r) => r.datas._rpt_sort === '-ord').length;
    // Keys: each replica counts those it has subscribers of (in a fleet, the same keys on every replica).
    const keys = Math.max(...(await Promise.all(subgraphs.map((s) => metric(s.url, 'zb_feed_pollers')))));
    const perPoll = polls > 0 ? calls / polls : 0;
    // At the default interval every key polls 12 times a minute; a naive loop per subscriber would poll as often.
    const perMinute = perPoll * keys * (60_000 / DEFAULT_POLL_MS);
    // Measured at POLL_MS: a fleet that polled a key on two replicas would show twice the single replica's rate here.
    const perSecond = calls / SECONDS;
    const naivePerMinute = perPoll * subscribers * (60_000 / DEFAULT_POLL_MS);
    const rss = subgraphs.map((s) => s.peakRssMb() ?? '?').join(' + ');
    return { subscribers, filters, keys, polls, calls, perPoll, perSecond, perMinute, naivePerMinute, rssMb: rss };
  } finally {
    for (const stop of stops) stop();
    await Promise.all(clients.map((c) => c.dispose()));
    await Promise.all(subgraphs.map((s) => s.close()));
  }
}

async function main(): Promise<void> {
  const erp = await startSimulator();
  console.log(`change feed ERP cost: measured at ZB_FEED_POLL_MS=${POLL_MS} for ${SECONDS} s per case, per minute at ${DEFAULT_POLL_MS} ms`);
  console.log('| replicas | subscribers | filters | pollers | list calls / poll | list calls / s measured | list calls / min | naive list calls / min | saving | subgraph peak RSS |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const line = (replicas: number, r: Awaited<ReturnType<typeof run>>) =>
    console.log(
      `| ${replicas} | ${r.subscribers} | ${r.filters} | ${r.keys} | ${r.perPoll.toFixed(2)} | ${r.perSecond.toFixed(1)} | ${r.perMinute.toFixed(0)} | ${r.naivePerMinute.toFixed(0)} | ${(r.naivePerMinute / Math.max(1, r.perMinute)).toFixed(0)}x | ${r.rssMb} MB |`,
    );
  try {
    for (const filters of [1, 10]) {
      for (const subscribers of [1, 100, 1000]) {
        if (subscribers < filters) continue;
        line(1, await run(subscribers, filters, erp));
      }
    }
    if (redisServerAvailable()) {
      const redis = await startRedis();
      try {
        line(2, await run(100, 1, erp, { redisUrl: redis.url, replicas: 2 }));
      } finally {
        await redis.stop();
      }
    } else {
      console.log('(2 replicas: skipped, redis-server is not installed)');
    }
  } finally {
    await erp.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
