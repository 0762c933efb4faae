import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { loadConfig } from '../src/config';
import { startSimulator } from '../src/simulator/server';
import { spawnSubgraph, startFlags, type SubgraphProcess } from './subgraph-process';

/**
 * `npm run bench:memory`: the worst LEGAL operations the per-operation limits admit, at and beyond the shedding bound,
 * against the shipped `dist/main.js` (a process of its own, `npm start`'s node flags), with the simulator in this
 * process as its ERP. Prints the subgraph's peak RSS (VmHWM, restarted per run) beside the documented bound, throughput,
 * status-code counts and latency. Figures, not a test: asserts nothing.
 *
 * Shapes, from the configuration's own defaults (so they follow the limits if those change):
 * - detail: one page with detail-only fields, pageSize = ZB_MAX_ERP_CALLS_PER_OPERATION - 1, i.e. exactly
 *   ZB_MAX_ERP_CALLS_PER_OPERATION estimated ERP calls (1 list + 1 detail per item);
 * - list-only: ZB_MAX_ITEMS_PER_OPERATION / ZB_MAX_PAGE_SIZE aliased pages of ZB_MAX_PAGE_SIZE, all list columns,
 *   each a distinct ERP call: the most items an operation may return.
 * Pages rotate per request so coalescing cannot share the ERP work away.
 *
 * Env: BENCH_SECONDS (60 per run), BENCH_LATENCY_MS (20), BENCH_CLIENTS (`<ZB_MAX_INFLIGHT_REQUESTS>,300`).
 */
const defaults = loadConfig({});
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 20);
const CLIENTS = (process.env.BENCH_CLIENTS ?? `${defaults.ZB_MAX_INFLIGHT_REQUESTS},300`).split(',').map(Number);
const RSS_BOUND_MB = 200;

const MAX_CALLS = defaults.ZB_MAX_ERP_CALLS_PER_OPERATION;
const MAX_ITEMS = defaults.ZB_MAX_ITEMS_PER_OPERATION;
const MAX_PAGE = defaults.ZB_MAX_PAGE_SIZE;

/** `AfterSaleErpField`'s (0.1: `ErpField`) sub-selection as the schema has it today (`key` if present, else `id`). */
function erpFieldSelection(): string {
  const sdl = readFileSync(join(__dirname, '..', 'schema', 'service.graphql'), 'utf8');
  const block = /type\s+(?:AfterSale)?ErpField\b[^{]*\{([^}]*)\}/.exec(sdl)?.[1] ?? '';
  return `${/^\s*key\s*:/m.test(block) ? 'key' : 'id'} caption text value`;
}

const ERP_FIELDS = erpFieldSelection();
const LIST_FIELDS = 'id code title customerName productName assignee acceptedAt createdBy fee category { id name } urgency { id name } result { id name }';
const SORTS = ['ID', 'CODE', 'TITLE', 'ACCEPTED_AT', 'CUSTOMER_NAME', 'FEE'];

const detailPageSize = MAX_CALLS - 1;
const listAliases = Math.floor(MAX_ITEMS / MAX_PAGE);

function detailBody(variant: number): string {
  const query = `{ afterSaleServices(pageSize: ${detailPageSize}, page: ${1 + (variant % 6)}) { items { id title content handlingContent remark erpFields { ${ERP_FIELDS} } } } }`;
  return JSON.stringify({ query });
}

function listOnlyBody(variant: number): string {
  const pages = Array.from({ length: listAliases }, (_, i) => {
    const k = i + variant;
    return `a${i}: afterSaleServices(pageSize: ${MAX_PAGE}, page: ${1 + (k % 3)}, sort: { field: ${SORTS[Math.floor(k / 3) % SORTS.length]}, direction: DESC }) { items { ${LIST_FIELDS} } }`;
  });
  return JSON.stringify({ query: `{ ${pages.join(' ')} }` });
}

interface Shape {
  name: string;
  bodies: string[];
}

const SHAPES: Shape[] = [
  { name: `detail, pageSize ${detailPageSize} (${MAX_CALLS} ERP calls)`, bodies: Array.from({ length: 6 }, (_, v) => detailBody(v)) },
  { name: `list-only, ${listAliases} x ${MAX_PAGE} (${listAliases * MAX_PAGE} items)`, bodies: Array.from({ length: 6 }, (_, v) => listOnlyBody(v)) },
];

interface RunFigures {
  shape: string;
  clients: number;
  peakMb: number | undefined;
  rps: number;
  ok: number;
  refused: number;
  busy: number;
  other: number;
  /** Connection errors other than timeouts (e.g. dropped beyond ZB_MAX_CLIENT_CONNECTIONS). */
  socketErrors: number;
  /** Requests with no answer within autocannon's 10 s timeout. */
  timeouts: number;
  p50: number;
  p99: number;
  erpCallsPerOk: number;
}

async function run(app: SubgraphProcess, shape: Shape, clients: number, countCalls: () => number): Promise<RunFigures> {
  app.resetPeak();
  const callsBefore = countCalls();
  let next = 0;
  const result = await autocannon({
    url: app.url,
    connections: clients,
    duration: SECONDS,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Rotates pages between requests, so concurrent operations do not coalesce onto the same ERP calls.
        setupRequest: (req) => ({ ...req, body: shape.bodies[next++ % shape.bodies.length]! }),
      },
    ],
  });
  const stats = result.statusCodeStats ?? {};
  const count = (code: string) => stats[code as `${number}`]?.count ?? 0;
  const total = Object.values(stats).reduce((n, s) => n + (s.count ?? 0), 0);
  const ok = count('200');
  return {
    shape: shape.name,
    clients,
    // undefined when the process is gone (it died during the run).
    peakMb: app.peakRssMb(),
    rps: result.requests.average,
    ok,
    refused: count('400'),
    busy: count('503'),
    other: total - ok - count('400') - count('503'),
    socketErrors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    erpCallsPerOk: ok ? (countCalls() - callsBefore) / ok : 0,
  };
}

async function main(): Promise<void> {
  const sim = await startSimulator({ faults: { latencyMs: LATENCY }, sessionTimeoutMs: 0 });
  const app = await spawnSubgraph({ erpUrl: sim.url, mode: 'product' });
  const countCalls = () => sim.calls.all().filter((c) => c.endpoint !== 'login').length;
  console.log(
    `bench:memory - ${SECONDS} s per run, ERP latency ${LATENCY} ms, node ${process.version} ${startFlags().join(' ')}; ` +
      `limits: ZB_MAX_ERP_CALLS_PER_OPERATION ${MAX_CALLS}, ZB_MAX_ITEMS_PER_OPERATION ${MAX_ITEMS}, ZB_MAX_INFLIGHT_REQUESTS ${defaults.ZB_MAX_INFLIGHT_REQUESTS}, ` +
      `ZB_INFLIGHT_BUDGET_BYTES ${defaults.ZB_INFLIGHT_BUDGET_BYTES}, ZB_MAX_CLIENT_CONNECTIONS ${defaults.ZB_MAX_CLIENT_CONNECTIONS}`,
  );
  console.log(`subgraph peak RSS after start-up: ${app.peakRssMb() ?? 'n/a'} MB`);

  // One of each first: both shapes must be admitted (200 with data), or the run measures refusals.
  for (const shape of SHAPES) {
    sim.calls.clear();
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: shape.bodies[0]!, signal: AbortSignal.timeout(30000) });
    const text = await res.text();
    const body = JSON.parse(text) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> };
    const codes = (body.errors ?? []).map((e) => e.extensions?.code).join(',');
    console.log(`one ${shape.name}: HTTP ${res.status}${codes ? ` ${codes}` : ''}, ${text.length} bytes, ${countCalls()} ERP calls`);
  }

  const rows: RunFigures[] = [];
  for (const clients of CLIENTS) {
    for (const shape of SHAPES) {
      sim.calls.clear();
      const f = await run(app, shape, clients, countCalls);
      rows.push(f);
      console.log(
        `${f.shape}, ${f.clients} clients: peak RSS ${f.peakMb ?? 'n/a (process gone?)'} MB (bound ${RSS_BOUND_MB} MB); ${f.rps.toFixed(0)} rps; ` +
          `200: ${f.ok}, 400: ${f.refused}, 503: ${f.busy}, other: ${f.other}, socket errors: ${f.socketErrors}, timeouts (10 s): ${f.timeouts}; p50 ${f.p50} ms, p99 ${f.p99} ms; ` +
          `${f.erpCallsPerOk.toFixed(1)} ERP calls per 200`,
      );
    }
  }
  const worst = Math.max(...rows.map((r) => r.peakMb ?? 0));
  console.log(`\nmax peak RSS ${worst} MB (bound ${RSS_BOUND_MB} MB): ${worst < RSS_BOUND_MB ? 'under' : 'OVER'} the bound`);
  console.log('\n| shape | clients | peak RSS | rps | 200 | 400 | 503 | socket errors | timeouts | p50 | p99 |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.shape} | ${r.clients} | ${r.peakMb ?? 'n/a'} MB | ${r.rps.toFixed(0)} | ${r.ok} | ${r.refused} | ${r.busy} | ${r.socketErrors} | ${r.timeouts} | ${r.p50} ms | ${r.p99} ms |`);
  }
  await app.close();
  await sim.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
