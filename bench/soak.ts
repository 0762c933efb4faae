import autocannon, { type Request } from 'autocannon';
import { startSimulator } from '../src/simulator/server';
import { spawnSubgraph } from './subgraph-process';

/**
 * `npm run bench:soak`: a mixed GraphQL load for SOAK_SECONDS (60) with a 5% simulator fault rate (HTML pages,
 * status "11", dropped connections, IIS 500s) and 20 ms ERP latency. Prints requests, errors by code, p50/p99,
 * peak RSS, and saves received per idempotency key (the invariant: exactly 1).
 */
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const RATE = Number(process.env.SOAK_FAULT_RATE ?? 0.05);
const KEYS = 20;

async function main(): Promise<void> {
  const sim = await startSimulator({ faults: { latencyMs: 20, maxConcurrent: 32, errorRate: RATE, seed: 7 }, sessionTimeoutMs: 0 });
  const app = await spawnSubgraph({ erpUrl: sim.url, mode: 'product', env: { ZB_BREAKER_VOLUME: '50' } });
  const codes = new Map<string, number>();
  let failedResponses = 0;
  const outcomes = new Map<string, number>();
  const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const onResponse = (_status: number, body: string) => {
    try {
      const json = JSON.parse(body) as { errors?: Array<{ extensions?: { code?: string } }>; data?: { handleService?: { outcome: string } } };
      for (const e of json.errors ?? []) count(codes, e.extensions?.code ?? 'NONE');
      if (json.errors?.length) failedResponses++;
      if (json.data?.handleService) count(outcomes, json.data.handleService.outcome);
    } catch {
      count(codes, 'UNPARSEABLE');
    }
  };
  const q = (query: string, variables: Record<string, unknown> = {}) => ({ method: 'POST' as const, body: JSON.stringify({ query, variables }), onResponse });
  let nextKey = 0;
  const requests: Request[] = [
    q('{ afterSaleServices(pageSize: 20) { items { id title customerName } } }'),
    q('{ afterSaleServices(pageSize: 10, filter: { pendingOnly: true }) { items { id content } } }'),
    q('{ afterSaleService(id: "1003") { title content erpFields { key } } }'),
    q('query($k: ID!) { afterSaleService(id: $k) { title remark } }', { k: '1004' }),
    // Four of every eight requests are saves; each draws the next of KEYS idempotency keys, so every key is repeated.
    ...Array.from({ length: 4 }, () => ({
      method: 'POST' as const,
      onResponse,
      setupRequest: (req: Request): Request => {
        const k = nextKey++ % KEYS;
        const i = { id: String(1100 + k), assigneeId: '2', note: `soak note ${k}`, salespersonId: '5', result: '已解决', idempotencyKey: `soak-${k}` };
        return { ...req, body: JSON.stringify({ query: 'mutation($i: HandleServiceInput!) { handleService(input: $i) { outcome } }', variables: { i } }) };
      },
    })),
  ];
  const result = await autocannon({ url: app.url, headers: { 'content-type': 'application/json' }, connections: 32, duration: SECONDS, requests });

  const saves = new Map<string, number>();
  for (const c of sim.calls.of('process')) count(saves, c.datas.info1 ?? '?');
  console.log(`soak ${SECONDS}s, fault rate ${RATE * 100}%, 32 connections, ERP latency 20 ms`);
  console.log(`requests ${result.requests.total} (${result.requests.average.toFixed(0)}/s), non-2xx ${result.non2xx}, transport errors ${result.errors}, timeouts ${result.timeouts}`);
  console.log(`latency p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, max ${result.latency.max} ms`);
  console.log(`GraphQL errors by code: ${JSON.stringify(Object.fromEntries(codes))}, in ${failedResponses} responses`);
  console.log(`handleService outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  console.log(`saves received per idempotency key: ${JSON.stringify([...new Set(saves.values())])} over ${saves.size} keys (must be [1])`);
  console.log(`ERP calls ${sim.calls.count()}, faults injected ${sim.calls.all().filter((c) => c.fault).length}`);
  console.log(`peak RSS (VmHWM) of the subgraph process: ${app.peakRssMb() ?? 'n/a'} MB (target < 200 MB)`);
  await app.close();
  await sim.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
