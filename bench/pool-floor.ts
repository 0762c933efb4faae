import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { startSimulator } from '../src/simulator/server';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from '../src/simulator/users';

/**
 * `npx ts-node --transpile-only bench/pool-floor.ts`: how close anything on this machine can come to the capacity
 * bound `sockets / latency` with the simulated ERP, with no GraphQL and no subgraph at all. An undici Pool of
 * POOL_SOCKETS sockets in this process calls add.asp (a detail read) as fast as POOL_CALLERS callers can, each waiting
 * for its answer before the next call, against the simulator at POOL_LATENCY_MS, also in this process (as in
 * `npm run bench`). Prints, per number of callers: calls/s, the time each socket took per call (sockets / calls per
 * second), the time the simulator says it took per call (arrival to reply written), and the ratio to the bound at the
 * nominal latency and at the served one. What is lost here is lost by every client of this rig: it is the floor under
 * issue #15's "B at 20 ms >= 0.9x the bound" (bench/README.md).
 *
 * Env: POOL_LATENCY_MS (20), POOL_SOCKETS (16), POOL_CALLERS (`1,16,64`), POOL_SECONDS (8 per run).
 */
const LATENCY = Number(process.env.POOL_LATENCY_MS ?? 20);
const SOCKETS = Number(process.env.POOL_SOCKETS ?? 16);
const CALLERS = (process.env.POOL_CALLERS ?? '1,16,64').split(',').map((n) => Number(n.trim()));
const SECONDS = Number(process.env.POOL_SECONDS ?? 8);
const SERVICES = 640;
const DETAIL = '/sysa/mobilephone/salesmanage/service/add.asp';

async function main(): Promise<void> {
  const sim = await startSimulator({ faults: { latencyMs: LATENCY, maxConcurrent: 64 }, sessionTimeoutMs: 0, dataset: { services: SERVICES } });
  const pool = new Pool(sim.url, { connections: SOCKETS, pipelining: 1 });
  const post = async (path: string, body: unknown): Promise<unknown> => {
    const r = await pool.request({ path, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return r.body.json();
  };
  const login = (await post('/webapi/v3/ov1/login', {
    datas: [
      { id: 'user', val: `txt:${DEFAULT_SIMULATOR_USER}` },
      { id: 'password', val: `txt:${DEFAULT_SIMULATOR_PASSWORD}` },
      { id: 'serialnum', val: 'txt:pool-floor' },
    ],
  })) as { header?: { session?: string } };
  const session = login.header?.session;
  if (!session) throw new Error('the simulator refused the login');
  const ords = sim.world.liveServices().map((s) => String(s.ord));

  console.log(`node ${process.version}; undici Pool of ${SOCKETS} sockets, simulator at ${LATENCY} ms in this process, ${SECONDS} s per run`);
  for (const callers of CALLERS) {
    sim.calls.clear();
    const servedBefore = sim.calls.servedMs();
    let n = 0;
    let done = 0;
    const end = performance.now() + SECONDS * 1000;
    const caller = async () => {
      while (performance.now() < end) {
        const reply = (await post(DETAIL, { session, datas: [{ id: 'ord', val: ords[n++ % ords.length] }] })) as { header?: { status?: number } };
        if (reply.header?.status !== 0) throw new Error(`the simulator answered status ${String(reply.header?.status)}`);
        done++;
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: callers }, caller));
    const rate = done / ((performance.now() - started) / 1000);
    const served = (sim.calls.servedMs() - servedBefore) / Math.max(1, sim.calls.count());
    const busy = Math.min(callers, SOCKETS);
    const peak = sim.calls.peak();
    console.log(
      `${String(callers).padStart(3)} callers: ${rate.toFixed(0)} calls/s; per socket ${((busy * 1000) / rate).toFixed(2)} ms a call, ` +
        `the simulator ${served.toFixed(2)} ms served; x bound ${((rate * LATENCY) / (busy * 1000)).toFixed(3)}, x served bound ${((rate * served) / (busy * 1000)).toFixed(3)}; at most ${peak} calls at the simulator at once`,
    );
  }
  await pool.close();
  await sim.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
