import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { startSimulator } from '../src/simulator/server';
import { load, median } from './common';
import { spawnSubgraph, startFlags } from './subgraph-process';

/**
 * `npm run bench`: the subgraph against the simulator with a fixed added latency, side by side with the physical
 * limits measured in the same run (a bare undici client for the detail fan-out, direct list.asp calls for overhead),
 * and with a naive resolver set. The subgraphs run as processes of their own (the shipped `dist/main.js`, and the
 * naive set), so the peak RSS printed is the subgraph's alone. Prints figures; asserts nothing.
 *
 * Env: BENCH_LATENCY_MS (20), BENCH_SECONDS (5 per load run), BENCH_ROUNDS (3), BENCH_DETAIL_C (8).
 */
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 20);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const C = Number(process.env.BENCH_DETAIL_C ?? 8);
const SIM_CAP = 64;

const Q_LIST = { query: '{ afterSaleServices(pageSize: 20) { items { id code title customerName acceptedAt urgency { name } } } }' };
const Q_DETAIL = { query: '{ afterSaleServices(pageSize: 20) { items { id title content handlingContent remark } } }' };
const ids = Array.from({ length: 50 }, (_, i) => String(1001 + (i % 20)));
const Q_ENTITIES = {
  query: 'query($r: [_Any!]!) { _entities(representations: $r) { ... on AfterSaleService { id title content } } }',
  variables: { r: ids.map((id) => ({ __typename: 'AfterSaleService', id })) },
};

async function main(): Promise<void> {
  const sim = await startSimulator({ faults: { latencyMs: LATENCY, maxConcurrent: SIM_CAP }, sessionTimeoutMs: 0 });
  const app = await spawnSubgraph({ erpUrl: sim.url, mode: 'product', env: { ZB_DETAIL_CONCURRENCY: String(C), ZB_MAX_CONCURRENT_CALLS: '64', ZB_MAX_CONNECTIONS: '64' } });
  const naive = await spawnSubgraph({
    erpUrl: sim.url,
    mode: 'naive',
    env: { ZB_DETAIL_CONCURRENCY: String(C), ZB_COALESCE: 'false', ZB_MAX_CONCURRENT_CALLS: '64', ZB_MAX_CONNECTIONS: '64', ZB_QUEUE_TIMEOUT_MS: '60000' },
  });
  const session = sim.sessions.tokens()[0]!;
  const rows: string[] = [];
  const print = (line: string) => {
    rows.push(line);
    console.log(line);
  };
  console.log(`simulator latency ${LATENCY} ms, cap ${SIM_CAP}; detail concurrency C=${C}; ${ROUNDS} rounds of ${SECONDS}s; node ${process.version}`);

  // Calls per operation are deterministic: one request each, counted from the simulator's call log.
  const callsFor = async (url: string, body: unknown) => {
    sim.calls.clear();
    await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return `${sim.calls.count()} (at most ${sim.calls.peak('detail')} details at once)`;
  };
  for (const [name, body] of [['a list-only', Q_LIST], ['b list+detail', Q_DETAIL], ['c _entities 50 (20 distinct)', Q_ENTITIES]] as const) {
    print(`calls/op ${name}: subgraph ${await callsFor(app.url, body)}, naive ${await callsFor(naive.url, body)}`);
  }

  // Peak RSS of the subgraph per phase: the kernel's high-water mark, read and restarted at each phase's end.
  const peaks = new Map<string, number>();
  const notePeak = (phase: string) => {
    const v = app.peakRssMb();
    if (v !== undefined) peaks.set(phase, Math.max(peaks.get(phase) ?? 0, v));
    app.resetPeak();
  };
  notePeak('start-up + one op each');

  // (b) wall time of one operation vs the measured floor: a bare undici client making the same 21 calls.
  const bare = new Pool(sim.url, { connections: 64 });
  const post = async (path: string, datas: Array<{ id: string; val: string }>, cmdkey: string) => {
    const res = await bare.request({ method: 'POST', path, headers: { 'content-type': 'application/zsml; charset=utf-8' }, body: JSON.stringify({ session, cmdkey, datas }) });
    return JSON.parse(await res.body.text()) as { body: { source: { table: { rows: string[][] } } } };
  };
  const floorOnce = async () => {
    const t0 = performance.now();
    const list = await post('/sysa/mobilephone/salesmanage/service/list.asp', [{ id: 'pagesize', val: '20' }], 'refresh');
    const ords = list.body.source.table.rows.map((r) => r[0]!);
    for (let i = 0; i < ords.length; i += C) {
      await Promise.all(ords.slice(i, i + C).map((o) => post('/sysa/mobilephone/salesmanage/service/add.asp', [{ id: 'ord', val: o }], '')));
    }
    return performance.now() - t0;
  };
  const subgraphOnce = async () => {
    const t0 = performance.now();
    await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(Q_DETAIL) });
    return performance.now() - t0;
  };
  const floors: number[] = [];
  const walls: number[] = [];
  for (let i = 0; i < 15 * ROUNDS; i++) {
    floors.push(await floorOnce());
    walls.push(await subgraphOnce());
  }
  notePeak('(b) one op at a time');
  const nominal = LATENCY + Math.ceil(20 / C) * LATENCY;
  print(`(b) one op: subgraph median ${median(walls).toFixed(1)} ms, bare-undici floor ${median(floors).toFixed(1)} ms, nominal ${nominal} ms, ratio ${(median(walls) / median(floors)).toFixed(3)} (target <= 1.15)`);

  // Throughput rounds, alternating subgraph / naive / limits.
  const results: Record<string, number[]> = {};
  const add = (k: string, v: number) => (results[k] ??= []).push(v);
  const erpCallsPerOp = async <R extends { requests: number }>(run: () => Promise<R>) => {
    sim.calls.clear();
    const r = await run();
    return { r, perOp: sim.calls.count() / Math.max(1, r.requests) };
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, body, conns] of [['a', Q_LIST, 20], ['b', Q_DETAIL, 20], ['c', Q_ENTITIES, 20], ['d', Q_DETAIL, 100]] as const) {
      const s = await erpCallsPerOp(() => load(app.url, body, conns, SECONDS));
      notePeak(`(${name})`);
      const n = await erpCallsPerOp(() => load(naive.url, body, conns, SECONDS));
      add(`${name} rps`, s.r.rps);
      add(`${name} p50`, s.r.p50);
      add(`${name} p99`, s.r.p99);
      add(`${name} calls/op`, s.perOp);
      add(`${name} naive rps`, n.r.rps);
      add(`${name} naive calls/op`, n.perOp);
      add(`${name} errors`, s.r.non2xx + s.r.errors);
    }
  }
  for (const name of ['a', 'b', 'c', 'd']) {
    const m = (k: string) => median(results[`${name} ${k}`]!);
    print(`(${name}) rps ${m('rps').toFixed(0)} p50 ${m('p50')} ms p99 ${m('p99')} ms, ERP calls/op ${m('calls/op').toFixed(2)}; naive rps ${m('naive rps').toFixed(0)}, calls/op ${m('naive calls/op').toFixed(2)}; call ratio naive/subgraph ${(m('naive calls/op') / m('calls/op')).toFixed(1)}x; errors ${m('errors')}`);
  }

  // (e) pure overhead: latency 0, list of 20, vs direct list.asp from the same load tool.
  sim.faults.configure({ latencyMs: 0 });
  const listBody = { session, cmdkey: 'refresh', datas: [{ id: 'pagesize', val: '20' }] };
  // 20 clients asking the same list: with coalescing (the default) concurrent ones share a list.asp call, so the
  // product can beat the direct rate; the same app with ZB_COALESCE=false shows the per-operation overhead alone.
  const uncoalesced = await spawnSubgraph({ erpUrl: sim.url, mode: 'product', env: { ZB_COALESCE: 'false', ZB_MAX_CONCURRENT_CALLS: '64', ZB_MAX_CONNECTIONS: '64' } });
  // A fresh process is not yet optimised by the JIT; the product instance has been under load for minutes.
  await load(uncoalesced.url, Q_LIST, 20, 2);
  const overhead: number[] = [];
  const rawOverhead: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const direct = await load(`${sim.url}/sysa/mobilephone/salesmanage/service/list.asp`, listBody, 20, SECONDS);
    const ours = await erpCallsPerOp(() => load(app.url, Q_LIST, 20, SECONDS));
    notePeak('(e)');
    const raw = await erpCallsPerOp(() => load(uncoalesced.url, Q_LIST, 20, SECONDS));
    const naiveE = await load(naive.url, Q_LIST, 20, SECONDS);
    overhead.push(ours.r.rps / direct.rps);
    rawOverhead.push(raw.r.rps / direct.rps);
    print(
      `(e) round ${round + 1}: direct list.asp ${direct.rps.toFixed(0)} rps; subgraph ${ours.r.rps.toFixed(0)} rps (p99 ${ours.r.p99} ms, ${ours.perOp.toFixed(2)} ERP calls/op): ${(ours.r.rps / direct.rps).toFixed(2)}x; ` +
        `coalescing off ${raw.r.rps.toFixed(0)} rps (p99 ${raw.r.p99} ms, ${raw.perOp.toFixed(2)} calls/op): ${(raw.r.rps / direct.rps).toFixed(2)}x; ` +
        `naive ${naiveE.rps.toFixed(0)} rps: ${(naiveE.rps / direct.rps).toFixed(2)}x`,
    );
  }
  print(`(e) median ratio ${median(overhead).toFixed(2)}x, coalescing off ${median(rawOverhead).toFixed(2)}x (target >= 0.5)`);
  await uncoalesced.close();
  const mb = (v: number | undefined) => (v === undefined ? 'n/a (no /proc)' : `${v} MB`);
  const phases = [...peaks].map(([phase, v]) => `${phase} ${v}`).join(', ');
  const worst = peaks.size ? `${Math.max(...peaks.values())} MB` : 'n/a (no /proc)';
  print(`peak RSS of the subgraph process (VmHWM, node ${startFlags().join(' ')}) by phase, MB: ${phases}; max ${worst} (target < 200 MB)`);
  print(`for comparison: naive subgraph (under ts-node) ${mb(naive.peakRssMb())}; bench process (simulator + load tool) ${Math.round(process.memoryUsage().rss / 1048576)} MB now`);

  await bare.close();
  await app.close();
  await naive.close();
  await sim.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
