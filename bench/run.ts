import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { loadConfig, type Config } from '../src/config';
import { startSimulator } from '../src/simulator/server';
import { erpIdle, load, loadEach, machineTicks, median, type LoadResult } from './common';
import { spawnSubgraph, startFlags, type SubgraphProcess } from './subgraph-process';

/**
 * `npm run bench`: the figures of issue #15 side by side, in one run. Two workloads, each at 0 ms and at
 * BENCH_LATENCY_MS of ERP latency, BENCH_CLIENTS clients, every request in flight a different page (the page number
 * rotates over the simulator's BENCH_RECORDS records, so neither coalescing nor any cache can share ERP work):
 *   A  a list of 20, list columns only (1 ERP call);
 *   B  a list of 20 with detail-only fields (1 list + 20 detail calls).
 * Each against
 *   subgraph  the shipped `dist/main.js` under `npm start`'s flags with DEFAULT settings (no ZB_* caps set);
 *   naive     the naive resolver set (bench/naive-subgraph.ts: no batching, no coalescing, one ERP call per field);
 *   floor     bare undici (bench/floor-server.ts): HTTP in, the same ERP calls with the same sockets and detail
 *             concurrency as the subgraph's defaults, JSON out, no GraphQL;
 * and, for A at 0 ms, direct list.asp calls from the load tool and the subgraph with ZB_COALESCE=false.
 * Every server is a process of its own, so its CPU (/proc/PID/stat, user + system, over the steady middle of each run,
 * divided by the operations answered in it) and its peak RSS (VmHWM, restarted per run) are its own; the simulator and
 * the load tool share the bench process, whose cores are printed too ("bench": near 1, the simulated ERP is the
 * bottleneck). Each run also prints how many cores the rest of the machine used meanwhile ("others": figures taken
 * while others ran are not comparable).
 * Rounds alternate; medians are printed, then a table and the targets. Prints figures; asserts nothing.
 *
 * Env: BENCH_LATENCY_MS (20), BENCH_SECONDS (5 per run), BENCH_ROUNDS (3), BENCH_WARMUP_SECONDS (8 of each workload per
 * server before the first round), BENCH_CLIENTS (10), BENCH_RECORDS (640
 * services in the simulator: 31 pages), BENCH_SIM_CAP (64: the simulated IIS's worker threads), BENCH_EXTRA (1: also
 * the `_entities` and 100-client hot-key workloads), BENCH_BASELINE_B_CPU_MS (the subgraph's B CPU ms/op before issue
 * #15, see bench/README.md), BENCH_BASELINE_ROOT (a checkout of the code before issue #15 with `dist/` built: its B
 * runs beside the subgraph's as "baseline", and the CPU target is judged against it), BENCH_PRODUCT_ROOT (measure the
 * product of another checkout, `dist/` built, instead of this one), BENCH_PRODUCT_ENV (JSON of ZB_* settings for the
 * product; none).
 */
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 20);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Seconds of each workload every server gets before the first round. */
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 8);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 640);
const SIM_CAP = Number(process.env.BENCH_SIM_CAP ?? 64);
const EXTRA = ['1', 'true', 'yes', 'on'].includes(process.env.BENCH_EXTRA ?? '');
const BASELINE_B_CPU_MS = Number(process.env.BENCH_BASELINE_B_CPU_MS ?? NaN);
/** A checkout of the code before issue #15, `dist/` built: its B is measured beside the subgraph's, in the same run. */
const BASELINE_ROOT = process.env.BENCH_BASELINE_ROOT;

/** ZB_* settings for the product beyond its defaults: none unless asked (e.g. to see what a setting does). */
const PRODUCT_ENV = JSON.parse(process.env.BENCH_PRODUCT_ENV ?? '{}') as Record<string, string>;
/** Another checkout of this project with `dist/` built (e.g. the code before a change): its product is measured. */
const PRODUCT_ROOT = process.env.BENCH_PRODUCT_ROOT;
const PAGE_SIZE = 20;

type Workload = 'A' | 'B';
type Target = 'subgraph' | 'subgraph, coalescing off' | 'baseline' | 'naive' | 'floor' | 'direct list.asp';
const SELECTION: Record<Workload, string> = {
  A: 'id code title customerName acceptedAt urgency { name }',
  B: 'id title content handlingContent remark',
};
const graphql = (w: Workload, page: number) => ({
  query: `query Page($page: Int!) { afterSaleServices(page: $page, pageSize: ${PAGE_SIZE}) { items { ${SELECTION[w]} } } }`,
  variables: { page },
});
const entityIds = Array.from({ length: 50 }, (_, i) => String(1001 + (i % 20)));
const Q_ENTITIES = {
  query: 'query($r: [_Any!]!) { _entities(representations: $r) { ... on AfterSaleService { id title content } } }',
  variables: { r: entityIds.map((id) => ({ __typename: 'AfterSaleService', id })) },
};
const LIST_PATH = '/sysa/mobilephone/salesmanage/service/list.asp';

interface Cell {
  rps: number;
  p50: number;
  p99: number;
  failed: number;
  cpuMsPerOp: number | undefined;
  callsPerOp: number;
  /** The most calls the simulated ERP served at once. */
  erpPeak: number;
  /** Mean time the simulated ERP took per call, arrival to reply written: the latency it actually gave (ms). */
  servedMs: number;
  /** Heap this bench process (simulator and load tool) used at the end of the run, MB. */
  benchHeapMb: number;
  peakMb: number | undefined;
  /** Cores this bench process (the simulator and the load tool) used: near 1, the ERP side is the bottleneck. */
  benchCores: number;
  /** Cores the rest of the machine used during the run (not this bench, not the server measured). */
  others: number | undefined;
}

async function main(): Promise<void> {
  // The product's effective settings, read by its own code: the floor uses the same sockets and detail concurrency.
  const productConfig = PRODUCT_ROOT ? ((await import(pathToFileURL(join(PRODUCT_ROOT, 'dist', 'config.js')).href)) as { loadConfig: (env: NodeJS.ProcessEnv) => Config }).loadConfig : loadConfig;
  const settings = productConfig(PRODUCT_ENV);
  const SOCKETS = settings.ZB_MAX_CONNECTIONS;
  const DETAIL_C = settings.ZB_DETAIL_CONCURRENCY;
  const productRoot = PRODUCT_ROOT ? { productRoot: PRODUCT_ROOT } : {};
  const sim = await startSimulator({ faults: { latencyMs: 0, maxConcurrent: SIM_CAP }, sessionTimeoutMs: 0, dataset: { services: RECORDS } });
  const pages = Math.floor(sim.world.liveServices().length / PAGE_SIZE);
  // Consecutive requests ask consecutive pages, so requests in flight at once ask different pages with room to spare.
  if (pages < 3 * CLIENTS) throw new Error(`BENCH_RECORDS=${RECORDS} gives ${pages} pages: fewer than 3 per client, requests in flight could share pages`);
  const pageOf = (n: number) => (n % pages) + 1;

  const product = await spawnSubgraph({ erpUrl: sim.url, mode: 'product', env: PRODUCT_ENV, ...productRoot });
  // The floor borrows the product's ERP session (the same user and client id: nobody is logged out).
  const session = sim.sessions.tokens()[0]!;
  const uncoalesced = await spawnSubgraph({ erpUrl: sim.url, mode: 'product', env: { ...PRODUCT_ENV, ZB_COALESCE: 'false' }, ...productRoot });
  // The naive set makes ~3x the ERP calls, so it waits longer for slots: a longer queue timeout keeps it from shedding.
  const naive = await spawnSubgraph({ erpUrl: sim.url, mode: 'naive', env: { ...PRODUCT_ENV, ZB_COALESCE: 'false', ZB_QUEUE_TIMEOUT_MS: '60000' } });
  const floor = await spawnSubgraph({
    erpUrl: sim.url,
    mode: 'floor',
    env: { FLOOR_ERP_URL: sim.url, FLOOR_SESSION: session, FLOOR_SOCKETS: String(SOCKETS), FLOOR_DETAIL_CONCURRENCY: String(DETAIL_C) },
  });
  const baselineProduct = BASELINE_ROOT ? await spawnSubgraph({ erpUrl: sim.url, mode: 'product', productRoot: BASELINE_ROOT }) : undefined;
  const servers: Partial<Record<Target, SubgraphProcess>> = { subgraph: product, 'subgraph, coalescing off': uncoalesced, ...(baselineProduct ? { baseline: baselineProduct } : {}), naive, floor };
  const startupPeak = product.peakRssMb();

  const urlOf = (t: Target) => (t === 'direct list.asp' ? sim.url + LIST_PATH : servers[t]!.url);
  const bodyOf = (t: Target, w: Workload) => (n: number) => {
    const page = pageOf(n);
    if (t === 'floor') return { workload: w, page };
    if (t === 'direct list.asp') return { session, cmdkey: 'refresh', datas: [{ id: 'pagesize', val: String(PAGE_SIZE) }, { id: 'pageindex', val: String(page) }] };
    return graphql(w, page);
  };

  console.log(
    `node ${process.version}, ${cpus().length} cores; simulator: ${RECORDS} services (${pages} pages of ${PAGE_SIZE}), at most ${SIM_CAP} calls at once; ` +
      `${CLIENTS} clients, ${ROUNDS} rounds of ${SECONDS} s; product${PRODUCT_ROOT ? ` of ${PRODUCT_ROOT}` : ''} ${Object.keys(PRODUCT_ENV).length ? `with ${JSON.stringify(PRODUCT_ENV)}` : 'defaults'}: ` +
      `ZB_MAX_CONNECTIONS ${SOCKETS}, ZB_MAX_CONCURRENT_CALLS ${settings.ZB_MAX_CONCURRENT_CALLS}, ZB_DETAIL_CONCURRENCY ${DETAIL_C}; flags ${startFlags(PRODUCT_ROOT).join(' ')}`,
  );

  // ERP calls of one operation, from the simulator's call log (deterministic; asserted in the tests), at the latency
  // under test so that the most detail calls served at once shows the detail concurrency.
  sim.faults.configure({ latencyMs: LATENCY });
  const callsOfOne = async (t: Target, body: unknown) => {
    sim.calls.clear();
    await fetch(urlOf(t), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { calls: sim.calls.count(), peak: sim.calls.peak('detail') };
  };
  const single: Record<string, { calls: number; peak: number }> = {};
  for (const t of ['subgraph', 'naive', 'floor'] as const) {
    for (const w of ['A', 'B'] as const) single[`${t} ${w}`] = await callsOfOne(t, bodyOf(t, w)(0));
    if (t !== 'floor') single[`${t} C`] = await callsOfOne(t, Q_ENTITIES);
  }
  const one = (k: string) => `${single[k]!.calls} (${single[k]!.peak} details at once)`;
  console.log(
    `ERP calls of one operation: A subgraph ${one('subgraph A')}, naive ${one('naive A')}, floor ${one('floor A')}; ` +
      `B subgraph ${one('subgraph B')}, naive ${one('naive B')}, floor ${one('floor B')}; ` +
      `C (_entities, 50 representations of 20 ids) subgraph ${one('subgraph C')}, naive ${one('naive C')}`,
  );
  const callsPerOp: Record<Workload, number> = { A: single['subgraph A']!.calls, B: single['subgraph B']!.calls };
  /** The ERP capacity the product is given: every socket busy all the time, each call taking the latency. */
  const bound = (w: Workload, latencyMs: number) => (latencyMs > 0 ? SOCKETS / ((latencyMs / 1000) * callsPerOp[w]) : Infinity);

  /** What a window of a run is charged with: CPU, calls, the machine's ticks, answers received. */
  const snapshot = (server: SubgraphProcess | undefined, answered: number) => ({
    at: performance.now(),
    cpu: server?.cpuMs(),
    own: process.cpuUsage(),
    machine: machineTicks(),
    calls: sim.calls.count(),
    served: sim.calls.servedMs(),
    answered,
  });

  /**
   * One run. Throughput and latency are the load tool's, over the whole run; CPU, ERP calls and the machine's load are
   * taken over its steady middle (from 1 s in to 0.25 s before the end) and divided by the operations answered in that
   * window: operations in flight at either edge are then about as many, and none is cut off by the load tool hanging up.
   */
  const measure = async (t: Target, w: Workload): Promise<Cell> => {
    const server = servers[t];
    await erpIdle(sim.calls);
    server?.resetPeak();
    sim.calls.clear();
    let answered = 0;
    const marks: Array<ReturnType<typeof snapshot>> = [];
    const timers = [1000, SECONDS * 1000 - 250].map((ms) => setTimeout(() => marks.push(snapshot(server, answered)), ms));
    const r: LoadResult = await loadEach(urlOf(t), bodyOf(t, w), CLIENTS, SECONDS, (status) => {
      if (status === 200) answered++;
    });
    for (const timer of timers) clearTimeout(timer);
    const [a, b] = marks;
    if (!a || !b) throw new Error('BENCH_SECONDS must be at least 2');
    const ops = Math.max(1, b.answered - a.answered);
    const wall = b.at - a.at;
    const serverMs = a.cpu !== undefined && b.cpu !== undefined ? b.cpu - a.cpu : undefined;
    const benchCores = (b.own.user + b.own.system - (a.own.user + a.own.system)) / 1000 / wall;
    let others: number | undefined;
    if (a.machine && b.machine) {
      const busyCores = ((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * cpus().length;
      others = busyCores - benchCores - (serverMs ?? 0) / wall;
    }
    return {
      // Over the window too: the first operations of a run take long to answer, which a whole-run average counts.
      rps: (ops * 1000) / wall,
      p50: r.p50,
      p99: r.p99,
      failed: r.non2xx + r.errors,
      cpuMsPerOp: serverMs === undefined ? undefined : serverMs / ops,
      callsPerOp: (b.calls - a.calls) / ops,
      erpPeak: sim.calls.peak(),
      servedMs: (b.served - a.served) / Math.max(1, b.calls - a.calls),
      benchHeapMb: process.memoryUsage().heapUsed / 1e6,
      peakMb: server?.peakRssMb(),
      benchCores,
      others,
    };
  };

  // Warm-up: a fresh process is not yet optimised by the JIT, nor its young generation grown to its working size. On
  // this project's 2-core machine the subgraph's CPU per A operation fell from 2.4 ms in its first 5 s of load to
  // 1.3-1.5 ms after 10-15 s (bench/README.md), so every server gets WARMUP seconds of each workload first.
  sim.faults.configure({ latencyMs: 0 });
  for (const t of ['subgraph', 'subgraph, coalescing off', ...(baselineProduct ? (['baseline'] as const) : []), 'naive', 'floor'] as const) {
    for (const w of ['A', 'B'] as const) await loadEach(urlOf(t), bodyOf(t, w), CLIENTS, WARMUP);
  }
  await erpIdle(sim.calls);

  // B one operation at a time: the subgraph's wall time beside the floor's (both over HTTP, same calls).
  sim.faults.configure({ latencyMs: LATENCY });
  const oneAtATime = async (t: Target, page: number) => {
    const t0 = performance.now();
    await fetch(urlOf(t), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodyOf(t, 'B')(page)) });
    return performance.now() - t0;
  };
  const walls: number[] = [];
  const floors: number[] = [];
  for (let i = 0; i < 10 * ROUNDS; i++) {
    walls.push(await oneAtATime('subgraph', i));
    floors.push(await oneAtATime('floor', i));
  }
  console.log(
    `B one operation at a time at ${LATENCY} ms: subgraph median ${median(walls).toFixed(1)} ms, floor ${median(floors).toFixed(1)} ms ` +
      `(nominal ${LATENCY + Math.ceil(PAGE_SIZE / DETAIL_C) * LATENCY} ms): ${(median(walls) / median(floors)).toFixed(3)}x (target <= 1.15)`,
  );

  const withBaseline: Target[] = baselineProduct ? ['subgraph', 'baseline', 'naive', 'floor'] : ['subgraph', 'naive', 'floor'];
  const plan: Array<[number, Workload, Target[]]> = [
    [0, 'A', ['subgraph', 'subgraph, coalescing off', 'naive', 'floor', 'direct list.asp']],
    [0, 'B', withBaseline],
    [LATENCY, 'A', ['subgraph', 'naive', 'floor']],
    [LATENCY, 'B', withBaseline],
  ];
  const cells = new Map<string, Cell[]>();
  const key = (latency: number, w: Workload, t: Target) => `${w}|${latency}|${t}`;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [latency, w, targets] of plan) {
      sim.faults.configure({ latencyMs: latency });
      for (const t of targets) {
        const c = await measure(t, w);
        const k = key(latency, w, t);
        cells.set(k, [...(cells.get(k) ?? []), c]);
        console.log(
          `round ${round} ${w} ${latency} ms ${t}: ${c.rps.toFixed(0)} ops/s, p50 ${c.p50} ms, p99 ${c.p99} ms, CPU ${fmt(c.cpuMsPerOp, 2)} ms/op, ` +
            `${c.callsPerOp.toFixed(2)} ERP calls/op${latency > 0 ? ` (at most ${c.erpPeak} at once, ${c.servedMs.toFixed(2)} ms each)` : ''}, peak ${c.peakMb ?? '-'} MB, bench ${fmt(c.benchCores, 2)} cores, ` +
            `others ${fmt(c.others, 2)} cores, bench heap ${c.benchHeapMb.toFixed(0)} MB${c.failed ? `, ${c.failed} FAILED` : ''}`,
        );
      }
    }
  }

  if (EXTRA) {
    sim.faults.configure({ latencyMs: LATENCY });
    for (const [name, body, clients] of [['C _entities 50 representations (20 ids)', Q_ENTITIES, 20], ['D hot keys: B on page 1', graphql('B', 1), 100]] as const) {
      for (const t of ['subgraph', 'naive'] as const) {
        sim.calls.clear();
        servers[t]!.resetPeak();
        const r = await load(urlOf(t), body, clients, SECONDS);
        console.log(`${name}, ${clients} clients, ${LATENCY} ms, ${t}: ${r.rps.toFixed(0)} ops/s, p50 ${r.p50} ms, p99 ${r.p99} ms, ${(sim.calls.count() / Math.max(1, r.requests)).toFixed(2)} ERP calls/op, peak ${servers[t]!.peakRssMb() ?? '-'} MB`);
      }
    }
  }

  // The table: medians over rounds (peak RSS: the highest).
  const med = (k: string, pick: (c: Cell) => number | undefined) => {
    const xs = (cells.get(k) ?? []).map(pick).filter((x): x is number => x !== undefined);
    return xs.length ? median(xs) : undefined;
  };
  const max = (k: string, pick: (c: Cell) => number | undefined) => {
    const xs = (cells.get(k) ?? []).map(pick).filter((x): x is number => x !== undefined);
    return xs.length ? Math.max(...xs) : undefined;
  };
  const header = ['workload', 'ERP ms', 'server', 'ops/s', 'p50 ms', 'p99 ms', 'CPU ms/op', 'ERP calls/op', 'ERP peak', 'ERP ms/call', 'x bound', 'x served bound', 'peak RSS MB', 'bench cores', 'others cores'];
  const rows: string[][] = [];
  for (const [latency, w, targets] of plan) {
    for (const t of targets) {
      const k = key(latency, w, t);
      const rps = med(k, (c) => c.rps);
      rows.push([
        w,
        String(latency),
        t,
        fmt(rps, 0),
        fmt(med(k, (c) => c.p50), 0),
        fmt(med(k, (c) => c.p99), 0),
        fmt(med(k, (c) => c.cpuMsPerOp), 2),
        fmt(med(k, (c) => c.callsPerOp), 2),
        latency > 0 ? fmt(max(k, (c) => c.erpPeak), 0) : '', // at 0 ms a call is served within one turn of the loop
        latency > 0 ? fmt(med(k, (c) => c.servedMs), 1) : '',
        latency > 0 && rps !== undefined && t !== 'direct list.asp' ? fmt(rps / bound(w, latency), 2) : '',
        latency > 0 && rps !== undefined && t !== 'direct list.asp' ? fmt(med(k, (c) => c.rps / bound(w, c.servedMs)), 2) : '',
        fmt(max(k, (c) => c.peakMb), 0),
        fmt(med(k, (c) => c.benchCores), 2),
        fmt(med(k, (c) => c.others), 2),
      ]);
    }
  }
  console.log(`\n${table(header, rows)}`);
  console.log(`x bound = ops/s / (ZB_MAX_CONNECTIONS ${SOCKETS} / (latency x ERP calls of one operation)): A ${fmt(bound('A', LATENCY), 0)}, B ${fmt(bound('B', LATENCY), 1)} ops/s at ${LATENCY} ms`);
  console.log(
    `x served bound = the same with the latency the simulated ERP actually gave per call (ERP ms/call: from a request's arrival to its reply written, ` +
      `i.e. the ${LATENCY} ms set plus the simulator's own work and timer slack; per run, medians)`,
  );

  // The targets of issue #15.
  const v = (latency: number, w: Workload, t: Target, pick: (c: Cell) => number | undefined) => med(key(latency, w, t), pick);
  const cpu = (c: Cell) => c.cpuMsPerOp;
  const bCpu = v(LATENCY, 'B', 'subgraph', cpu);
  const bFloor = v(LATENCY, 'B', 'floor', cpu);
  const baselineCpu = baselineProduct ? v(LATENCY, 'B', 'baseline', cpu) : Number.isFinite(BASELINE_B_CPU_MS) ? BASELINE_B_CPU_MS : undefined;
  const baseline =
    baselineCpu === undefined
      ? ' (no baseline: BENCH_BASELINE_ROOT or BENCH_BASELINE_B_CPU_MS)'
      : `, ${ratio(bCpu, baselineCpu)} the baseline's ${fmt(baselineCpu, 2)} ms (${baselineProduct ? 'measured in this run' : 'BENCH_BASELINE_B_CPU_MS'}; target <= 0.5)`;
  console.log(`\ntargets:`);
  console.log(`- B CPU per operation at ${LATENCY} ms: subgraph ${fmt(bCpu, 2)} ms${baseline}; floor ${fmt(bFloor, 2)} ms: ${ratio(bCpu, bFloor)} the floor (target <= 2)`);
  console.log(`  (at 0 ms: subgraph ${fmt(v(0, 'B', 'subgraph', cpu), 2)} ms, floor ${fmt(v(0, 'B', 'floor', cpu), 2)} ms, naive ${fmt(v(0, 'B', 'naive', cpu), 2)} ms)`);
  const served = v(LATENCY, 'B', 'subgraph', (c) => c.servedMs);
  const servedBound = (t: Target) => v(LATENCY, 'B', t, (c) => c.rps / bound('B', c.servedMs));
  console.log(
    `- B at ${LATENCY} ms with the default caps: ${fmt(v(LATENCY, 'B', 'subgraph', (c) => c.rps), 1)} ops/s, ${ratio(v(LATENCY, 'B', 'subgraph', (c) => c.rps), bound('B', LATENCY))} the bound ${fmt(bound('B', LATENCY), 1)} ` +
      `(target >= 0.9; floor ${ratio(v(LATENCY, 'B', 'floor', (c) => c.rps), bound('B', LATENCY))}); against the latency the ERP gave (${fmt(served, 2)} ms per call): ` +
      `subgraph ${fmt(servedBound('subgraph'), 2)}x, floor ${fmt(servedBound('floor'), 2)}x`,
  );
  const direct = v(0, 'A', 'direct list.asp', (c) => c.rps);
  // Per round, against the direct rate of the same round (the ERP side's own rate moves from round to round).
  const perRound = (t: Target) => {
    const mine = cells.get(key(0, 'A', t)) ?? [];
    const theirs = cells.get(key(0, 'A', 'direct list.asp')) ?? [];
    const xs = mine.map((c, i) => c.rps / (theirs[i]?.rps ?? NaN)).filter(Number.isFinite);
    return xs.length ? `${median(xs).toFixed(2)}x (rounds: ${xs.map((x) => x.toFixed(2)).join(', ')})` : '-';
  };
  console.log(`- A at 0 ms: coalescing off ${perRound('subgraph, coalescing off')} the direct list.asp rate of the same round (median ${fmt(direct, 0)} ops/s; target >= 0.9); as shipped ${perRound('subgraph')}`);
  const peaks = plan.flatMap(([latency, w]) => [max(key(latency, w, 'subgraph'), (c) => c.peakMb)]).filter((x): x is number => x !== undefined);
  console.log(`- peak RSS of the subgraph: start-up ${startupPeak ?? '-'} MB, workloads max ${peaks.length ? Math.max(...peaks) : '-'} MB (target < 200 MB; the naive set, under ts-node without those flags: ${naive.peakRssMb() ?? '-'} MB since its start)`);

  for (const s of [product, uncoalesced, baselineProduct, naive, floor]) await s?.close();
  await sim.close();
}

function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || !Number.isFinite(a / b) ? '-' : `${(a / b).toFixed(2)}x`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
