import { cpus } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config';
import { startSimulator } from '../src/simulator/server';
import { erpIdle, loadEach, machineTicks, median } from './common';
import { spawnSubgraph, type LoopDelay, type SubgraphProcess } from './subgraph-process';

/**
 * Is the ERP socket pool kept full? Workload B (a list of 20 + 20 details, every request in flight a different page)
 * with CAP_CLIENTS clients at CAP_LATENCY_MS, against settings given as presets (CAP_PRESETS, comma-separated; all by
 * default). Per run: ops/s and its ratio to the bound `sockets / (latency x 21)` (that ratio is also the mean share of
 * the sockets the ERP saw busy), CPU ms/op of the server process, the share of one core its main thread used (near 1:
 * its event loop is saturated), its event loop delay (how long ready work waits, bench/loop-monitor.ts), the process
 * ERP call limiter's slots in use and calls queued (sampled from /metrics: `zb_erp_in_flight`, `zb_erp_queued`), and
 * the cores the rest of the machine used meanwhile. Rounds alternate; medians.
 *
 *   npm run build && npx ts-node --transpile-only bench/capacity.ts
 *
 * Env: CAP_LATENCY_MS (20), CAP_CLIENTS (10), CAP_SECONDS (5), CAP_ROUNDS (3), CAP_SIM_CAP (64), CAP_PRESETS,
 * CAP_BASELINE_ROOT (a checkout of the code before a change, with `dist/` built: adds its presets).
 */
const LATENCY = Number(process.env.CAP_LATENCY_MS ?? 20);
const CLIENTS = Number(process.env.CAP_CLIENTS ?? 10);
const SECONDS = Number(process.env.CAP_SECONDS ?? 5);
const ROUNDS = Number(process.env.CAP_ROUNDS ?? 3);
const SIM_CAP = Number(process.env.CAP_SIM_CAP ?? 64);
const DEFAULTS = loadConfig({});

const BASELINE_ROOT = process.env.CAP_BASELINE_ROOT;

interface Preset {
  mode: 'product' | 'floor';
  /** ZB_* settings of the product (defaults for the rest), or the floor's sockets and detail concurrency. */
  env: Record<string, string>;
  sockets: number;
  /** Another checkout with `dist/` built (the code before a change); this one when unset. */
  root?: string;
}
const product = (env: Record<string, string>, root?: string): Preset => ({
  mode: 'product',
  env,
  sockets: Number(env.ZB_MAX_CONNECTIONS ?? DEFAULTS.ZB_MAX_CONNECTIONS),
  ...(root ? { root } : {}),
});
const floor = (sockets: number, detail: number, burnMs = 0): Preset => ({
  mode: 'floor',
  env: { FLOOR_SOCKETS: String(sockets), FLOOR_DETAIL_CONCURRENCY: String(detail), FLOOR_BURN_MS: String(burnMs) },
  sockets,
});
const PRESETS: Record<string, Preset> = {
  defaults: product({}),
  'floor 16/8': floor(16, 8),
  'floor 16/16': floor(16, 16),
  // The floor spending CPU per ERP reply, as a heavier client does: how full it then keeps the same sockets.
  'floor burn 0.5': floor(16, 8, 0.5),
  'floor burn 1': floor(16, 8, 1),
  'floor burn 1.5': floor(16, 8, 1.5),
  'detail 4': product({ ZB_DETAIL_CONCURRENCY: '4' }),
  'detail 16': product({ ZB_DETAIL_CONCURRENCY: '16' }),
  'sockets 32': product({ ZB_MAX_CONNECTIONS: '32' }),
  // CAP_BASELINE_ROOT: a checkout of the code before the change, built (its defaults: 16 sockets, 32 calls, detail 8).
  ...(BASELINE_ROOT ? { baseline: product({}, BASELINE_ROOT), 'baseline calls 16': product({ ZB_MAX_CONCURRENT_CALLS: '16' }, BASELINE_ROOT) } : {}),
};
const chosen = (process.env.CAP_PRESETS ?? Object.keys(PRESETS).join(',')).split(',').map((s) => s.trim());

const Q = 'query Page($page: Int!) { afterSaleServices(page: $page, pageSize: 20) { items { id title content handlingContent remark } } }';

interface Run {
  rps: number;
  /** Share of the sockets the ERP saw busy: calls made x latency / (sockets x time), over the window. */
  erpBusy: number;
  /** Mean time the simulated ERP took per call (arrival to reply written), ms: the latency it actually gave. */
  servedMs: number;
  p50: number;
  p99: number;
  failed: number;
  cpuMsPerOp: number;
  mainShare: number;
  loop: LoopDelay | undefined;
  inFlight: number;
  queued: number;
  /** Mean time of one detail attempt as the product saw it (zb_erp_call_duration_seconds: from handing it to the
   * HTTP client to its reply parsed): the ERP's latency plus whatever delays the reply on either side. */
  attemptMs: number;
  /** The bench process's event loop delay (the simulator's: a late simulator answers late). */
  simLoopMs: number;
  others: number;
}

async function main(): Promise<void> {
  const sim = await startSimulator({ faults: { latencyMs: LATENCY, maxConcurrent: SIM_CAP }, sessionTimeoutMs: 0, dataset: { services: 640 } });
  const pages = Math.floor(sim.world.liveServices().length / 20);
  const servers = new Map<string, SubgraphProcess>();
  for (const name of chosen) {
    const preset = PRESETS[name];
    if (!preset) throw new Error(`unknown preset '${name}'; known: ${Object.keys(PRESETS).join(', ')}`);
    // The floor borrows the ERP session the first product opened (the same user and client id: nobody is logged out).
    const session = sim.sessions.tokens()[0];
    if (preset.mode === 'floor' && !session) throw new Error('name a product preset before the floor ones: the floor borrows its ERP session');
    const env = preset.mode === 'floor' ? { ...preset.env, FLOOR_ERP_URL: sim.url, FLOOR_SESSION: session ?? '' } : preset.env;
    servers.set(name, await spawnSubgraph({ erpUrl: sim.url, mode: preset.mode, env, monitorLoop: true, ...(preset.root ? { productRoot: preset.root } : {}) }));
  }
  console.log(`B at ${LATENCY} ms, ${CLIENTS} clients, ${pages} pages rotating, simulator cap ${SIM_CAP}, ${ROUNDS} rounds of ${SECONDS} s; node ${process.version}, ${cpus().length} cores`);

  const bodyOf = (name: string) => (n: number) => {
    const page = (n % pages) + 1;
    return PRESETS[name]!.mode === 'floor' ? { workload: 'B', page } : { query: Q, variables: { page } };
  };
  for (const [name, server] of servers) await loadEach(server.url, bodyOf(name), CLIENTS, 2); // JIT warm-up

  const runs = new Map<string, Run[]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [name, server] of servers) {
      const metricsUrl = server.url.replace(/\/graphql$/, '/metrics');
      const gauges: Array<[number, number]> = [];
      const sampler = PRESETS[name]!.mode === 'product'
        ? setInterval(() => {
            void fetch(metricsUrl)
              .then((r) => r.text())
              .then((t) => {
                const gauge = (m: string) => Number(new RegExp(`^${m} (\\S+)`, 'm').exec(t)?.[1] ?? NaN);
                gauges.push([gauge('zb_erp_in_flight'), gauge('zb_erp_queued')]);
              }, () => undefined);
          }, 100)
        : undefined;
      await erpIdle(sim.calls);
      await server.loopDelay(); // restart its histogram
      const attempts0 = PRESETS[name]!.mode === 'product' ? await detailAttempts(metricsUrl) : undefined;
      const simLoop = monitorEventLoopDelay({ resolution: 1 });
      simLoop.enable();
      const cpu0 = server.cpuMs()!;
      const main0 = server.mainThreadCpuMs()!;
      const own0 = process.cpuUsage();
      const m0 = machineTicks();
      const t0 = performance.now();
      // CPU per operation over the run's steady middle (1 s in to 0.25 s before the end), per operation answered in it.
      let answered = 0;
      const marks: Array<{ cpu: number; answered: number; calls: number; served: number; at: number }> = [];
      const timers = [1000, SECONDS * 1000 - 250].map((ms) => setTimeout(() => marks.push({ cpu: server.cpuMs()!, answered, calls: sim.calls.count(), served: sim.calls.servedMs(), at: performance.now() }), ms));
      const r = await loadEach(server.url, bodyOf(name), CLIENTS, SECONDS, (status) => {
        if (status === 200) answered++;
      });
      for (const timer of timers) clearTimeout(timer);
      const wall = performance.now() - t0;
      const [a, b] = marks;
      if (!a || !b) throw new Error('CAP_SECONDS must be at least 2');
      simLoop.disable();
      clearInterval(sampler);
      const attempts1 = attempts0 ? await detailAttempts(metricsUrl) : undefined;
      const cpu = server.cpuMs()! - cpu0;
      const mainCpu = server.mainThreadCpuMs()! - main0;
      const own = process.cpuUsage(own0);
      const m1 = machineTicks();
      const loop = await server.loopDelay();
      const busy = m0 && m1 ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * cpus().length : NaN;
      const run: Run = {
        // Over the window too: the first operations take long to answer, which a whole-run average counts as slowness.
        rps: ((b.answered - a.answered) * 1000) / (b.at - a.at),
        erpBusy: ((b.calls - a.calls) * LATENCY) / (b.at - a.at) / PRESETS[name]!.sockets,
        servedMs: (b.served - a.served) / Math.max(1, b.calls - a.calls),
        p50: r.p50,
        p99: r.p99,
        failed: r.non2xx + r.errors,
        cpuMsPerOp: (b.cpu - a.cpu) / Math.max(1, b.answered - a.answered),
        mainShare: mainCpu / wall,
        loop,
        inFlight: gauges.length ? median(gauges.map((g) => g[0])) : NaN,
        queued: gauges.length ? median(gauges.map((g) => g[1])) : NaN,
        attemptMs: attempts0 && attempts1 ? ((attempts1.sum - attempts0.sum) * 1000) / Math.max(1, attempts1.count - attempts0.count) : NaN,
        simLoopMs: simLoop.mean / 1e6,
        others: busy - (cpu + (own.user + own.system) / 1000) / wall,
      };
      runs.set(name, [...(runs.get(name) ?? []), run]);
      console.log(`round ${round} ${name}: ${line(run, PRESETS[name]!.sockets)}`);
    }
  }
  console.log('\nmedians:');
  for (const [name, rs] of runs) {
    const m = (pick: (r: Run) => number) => median(rs.map(pick));
    const loops = rs.map((r) => r.loop).filter((l): l is LoopDelay => l !== undefined);
    const loop = loops.length ? { mean: median(loops.map((l) => l.mean)), p50: median(loops.map((l) => l.p50)), p99: median(loops.map((l) => l.p99)), max: median(loops.map((l) => l.max)) } : undefined;
    const run: Run = {
      rps: m((r) => r.rps),
      erpBusy: m((r) => r.erpBusy),
      servedMs: m((r) => r.servedMs),
      p50: m((r) => r.p50),
      p99: m((r) => r.p99),
      failed: m((r) => r.failed),
      cpuMsPerOp: m((r) => r.cpuMsPerOp),
      mainShare: m((r) => r.mainShare),
      loop,
      inFlight: m((r) => r.inFlight),
      queued: m((r) => r.queued),
      attemptMs: m((r) => r.attemptMs),
      simLoopMs: m((r) => r.simLoopMs),
      others: m((r) => r.others),
    };
    console.log(`${name.padEnd(22)} ${line(run, PRESETS[name]!.sockets)}`);
  }
  for (const server of servers.values()) await server.close();
  await sim.close();
}

/** The product's detail attempts so far: count, and total seconds (Prometheus histogram `_count` and `_sum`). */
async function detailAttempts(metricsUrl: string): Promise<{ count: number; sum: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const value = (suffix: string) => Number(new RegExp(`^zb_erp_call_duration_seconds_${suffix}\\{endpoint="detail"\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return { count: value('count'), sum: value('sum') };
}

function line(r: Run, sockets: number): string {
  const bound = sockets / ((LATENCY / 1000) * 21);
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  return (
    `${f(r.rps)} ops/s (${f(r.rps / bound, 2)}x the bound ${f(bound)}; sockets busy ${f(r.erpBusy, 2)}; the ERP took ${f(r.servedMs, 1)} ms per call: ${f((r.rps * r.servedMs) / LATENCY / bound, 2)}x the bound at that latency), p50 ${r.p50} p99 ${r.p99} ms, CPU ${f(r.cpuMsPerOp, 2)} ms/op, main thread ${f(r.mainShare, 2)} core, ` +
    `loop delay mean ${f(r.loop?.mean ?? NaN)} p99 ${f(r.loop?.p99 ?? NaN)} ms, limiter in flight ${f(r.inFlight)} queued ${f(r.queued)}, ` +
    `detail attempt ${f(r.attemptMs)} ms, simulator loop delay ${f(r.simLoopMs)} ms, others ${f(r.others, 2)} cores${r.failed ? `, ${r.failed} FAILED` : ''}`
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
