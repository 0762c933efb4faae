import { fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startSimulator } from '../src/simulator/server';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from '../src/simulator/users';
import { median } from './common';
import { freePort, startFlags, statusMb } from './subgraph-process';

/**
 * CPU milliseconds per GraphQL operation of the subgraph process (`/proc/<pid>/stat` utime + stime, all threads, not
 * wall time), for workload A (list of 20, list columns only: 1 ERP call) and B (list of 20 with detail-only fields:
 * 1 + 20 ERP calls), every request a different page so that neither coalescing nor any cache shares the work away.
 * The subgraph is the shipped `dist/main.js` (build first) in a process of its own, under `npm start`'s node flags
 * unless CPU_FLAGS gives others; the simulator and the load loop (undici, CPU_CLIENTS at a time) run in this process.
 * Figures, not a test: a quick tool for whoever changes the hot path (`npm run bench` is the full picture).
 *
 * CPU time per operation is far less sensitive than throughput to other work on the machine, but not immune: under
 * contention each operation takes longer, and the process's own background work (timers, GC of idle time) is shared
 * by fewer operations. So CPU_COMPARE runs another build side by side, round by round, under the same conditions: the
 * path of another checkout's `dist/main.js` (e.g. the last commit, built in a directory of its own; `path@<node flags>`
 * to run it under other flags), `flags:<node flags>` for this build under other node flags (what the memory flags
 * cost), or `env:ZB_X=1,...` for this build with other settings; several, separated by `;`. Short rounds (CPU_SECONDS=3, CPU_ROUNDS=10) interleave them more finely.
 *
 * Env: CPU_SECONDS (10 per run), CPU_ROUNDS (3, medians printed), CPU_CLIENTS (10), CPU_LATENCY_MS (0),
 * CPU_WORKLOADS (`A,B`), CPU_FLAGS (space-separated node flags; default the start script's), CPU_COMPARE, CPU_ENV
 * (`ZB_X=1,ZB_Y=2`: settings for every subgraph),
 * CPU_PROF_DIR (write a V8 CPU profile of each subgraph there).
 */
const SECONDS = Number(process.env.CPU_SECONDS ?? 10);
const ROUNDS = Number(process.env.CPU_ROUNDS ?? 3);
const CLIENTS = Number(process.env.CPU_CLIENTS ?? 10);
const LATENCY = Number(process.env.CPU_LATENCY_MS ?? 0);
const WORKLOADS = (process.env.CPU_WORKLOADS ?? 'A,B').split(',').map((w) => w.trim().toUpperCase());
/** Enough services that the requests in flight never share a page (32 full pages of 20), few enough to keep the simulator cheap. */
const SERVICES = 640;
/** Linux USER_HZ: /proc times are in clock ticks of 10 ms. */
const TICK_MS = 10;
const THIS_BUILD = join(__dirname, '..', 'dist', 'main.js');

const QUERIES: Record<string, (page: number) => string> = {
  A: (page) => `{ afterSaleServices(pageSize: 20, page: ${page}) { items { id code title customerName acceptedAt urgency { name } } } }`,
  B: (page) => `{ afterSaleServices(pageSize: 20, page: ${page}) { items { id title content handlingContent remark } } }`,
};

/** utime + stime of a process or thread, from its `stat` file, in ms. */
function statMs(path: string): number {
  // Fields after the command name (which may hold spaces): utime and stime are the 14th and 15th of the line.
  const stat = readFileSync(path, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
}

/** CPU ms of the main (JavaScript) thread and of all other threads (V8's GC and compiler helpers, libuv's pool: all named `node`). */
function threadsMs(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const label = tid === String(pid) ? 'main' : `other threads`;
      byName.set(label, (byName.get(label) ?? 0) + statMs(`/proc/${pid}/task/${tid}/stat`));
    } catch {
      // The thread ended meanwhile.
    }
  }
  return byName;
}

interface Subject {
  name: string;
  entry: string;
  flags: string[];
  env?: Record<string, string>;
}

/** `K=V,K2=V2` -> an environment record. */
const envOf = (list: string): Record<string, string> =>
  Object.fromEntries(list.split(',').filter((kv) => kv.includes('=')).map((kv) => [kv.slice(0, kv.indexOf('=')).trim(), kv.slice(kv.indexOf('=') + 1).trim()]));

interface Running {
  subject: Subject;
  child: ChildProcess;
  pid: number;
  pool: Pool;
  path: string;
}

async function spawn(subject: Subject, erpUrl: string): Promise<Running> {
  const port = await freePort();
  const prof = process.env.CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF_DIR}`] : [];
  const env = {
    PATH: process.env.PATH ?? '', NODE_ENV: 'production', HOST: '127.0.0.1', PORT: String(port), ZB_BASE_URL: erpUrl,
    ZB_USER: DEFAULT_SIMULATOR_USER, ZB_PASSWORD: DEFAULT_SIMULATOR_PASSWORD, ZB_SESSION_HEADER_REQUIRED: 'false', ZB_LOG_LEVEL: 'error',
    ...envOf(process.env.CPU_ENV ?? ''),
    ...subject.env,
  };
  const child = fork(subject.entry, [], { env, execArgv: [...subject.flags, ...prof], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const base = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  while (!(await fetch(`${base}/health/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`${subject.name} not ready`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { subject, child, pid: child.pid!, pool: new Pool(base, { connections: CLIENTS }), path: '/graphql' };
}

async function stop(r: Running): Promise<void> {
  await r.pool.close();
  if (r.child.exitCode !== null) return;
  await new Promise<void>((resolve) => {
    r.child.once('exit', () => resolve());
    r.child.kill('SIGTERM');
  });
}

async function drive(r: Running, query: (page: number) => string, seconds: number, pages: number): Promise<{ ops: number; errors: number }> {
  let next = 0;
  let ops = 0;
  let errors = 0;
  const until = Date.now() + seconds * 1000;
  const client = async () => {
    while (Date.now() < until) {
      const page = 1 + (next++ % pages);
      const res = await r.pool.request({ method: 'POST', path: r.path, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: query(page) }) });
      const text = await res.body.text();
      if (res.statusCode === 200 && !text.includes('"errors"')) ops++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));
  return { ops, errors };
}

function subjects(): Subject[] {
  const flags = process.env.CPU_FLAGS !== undefined ? process.env.CPU_FLAGS.split(/\s+/).filter((f) => f !== '') : startFlags();
  const list: Subject[] = [{ name: 'this build', entry: THIS_BUILD, flags }];
  for (const compare of (process.env.CPU_COMPARE ?? '').split(';').map((c) => c.trim()).filter((c) => c !== '')) {
    if (compare.startsWith('env:')) {
      list.push({ name: `this build, ${compare.slice('env:'.length)}`, entry: THIS_BUILD, flags, env: envOf(compare.slice('env:'.length)) });
    } else if (compare.startsWith('flags:')) {
      const other = compare.slice('flags:'.length).split(/\s+/).filter((f) => f !== '');
      list.push({ name: `this build, flags ${other.join(' ') || '(none)'}`, entry: THIS_BUILD, flags: other });
    } else {
      // `path@flags`: that build under its own node flags (e.g. an older checkout under its own start script's).
      const at = compare.indexOf('@');
      const entry = at < 0 ? compare : compare.slice(0, at);
      const own = at < 0 ? flags : compare.slice(at + 1).split(/\s+/).filter((f) => f !== '');
      list.push({ name: at < 0 ? entry : `${entry} (${own.join(' ')})`, entry, flags: own });
    }
  }
  return list;
}

async function main(): Promise<void> {
  const sim = await startSimulator({ sessionTimeoutMs: 0, dataset: { services: SERVICES }, faults: { latencyMs: LATENCY } });
  // Full pages only (the admin sees every live service): a short last page would lower the ERP calls per operation.
  const pages = Math.floor(sim.world.liveServices().length / 20);
  const running: Running[] = [];
  try {
    for (const s of subjects()) running.push(await spawn(s, sim.url));
    console.log(`${CLIENTS} clients, ${SECONDS} s per run, ${ROUNDS} rounds, ERP latency ${LATENCY} ms`);
    for (const r of running) console.log(`- ${r.subject.name}: node ${r.subject.flags.join(' ') || '(no flags)'}`);
    // Warm-up: lazy compilation and first-use caches are not per-operation costs.
    for (const r of running) for (const w of WORKLOADS) await drive(r, QUERIES[w]!, 3, pages);
    const cpu = new Map<string, number[]>();
    const rate = new Map<string, number[]>();
    const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const w of WORKLOADS) {
        for (const r of running) {
          const before = statMs(`/proc/${r.pid}/stat`);
          const threadsBefore = threadsMs(r.pid);
          const own = process.cpuUsage();
          sim.calls.clear();
          const { ops, errors } = await drive(r, QUERIES[w]!, SECONDS, pages);
          const used = statMs(`/proc/${r.pid}/stat`) - before;
          // The JavaScript thread, and V8's helper threads (parallel GC, concurrent marking, compilers), libuv's pool.
          const threads = [...threadsMs(r.pid)].map(([name, ms]) => [name, (ms - (threadsBefore.get(name) ?? 0)) / ops] as const).filter(([, ms]) => ms > 0);
          const ownUsed = process.cpuUsage(own);
          const calls = sim.calls.count();
          push(cpu, `${w} ${r.subject.name}`, used / ops);
          push(rate, `${w} ${r.subject.name}`, ops / SECONDS);
          console.log(
            `round ${round + 1} ${w} ${r.subject.name}: ${ops} ops (${errors} errors), ${(ops / SECONDS).toFixed(0)} ops/s, CPU ${(used / ops).toFixed(2)} ms/op ` +
              `(${threads.map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ')}), ERP calls/op ${(calls / ops).toFixed(2)}; bench process ${((ownUsed.user + ownUsed.system) / 1000 / ops).toFixed(2)} ms/op`,
          );
        }
      }
    }
    // The least CPU per operation of the rounds is the one least disturbed by other work on the machine.
    for (const [key, values] of cpu) {
      console.log(`${key}: CPU median ${median(values).toFixed(2)} ms/op, least ${Math.min(...values).toFixed(2)} ms/op; median ${median(rate.get(key)!).toFixed(0)} ops/s`);
    }
    for (const r of running) console.log(`${r.subject.name}: peak RSS ${statusMb(r.pid, 'VmHWM') ?? '?'} MB`);
  } finally {
    for (const r of running) await stop(r);
    await sim.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
