import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import ts from 'typescript';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from '../src/simulator/users';

/**
 * The subgraph under measurement runs in a process of its own, so its memory is its own: the simulator and the load
 * tool stay in the bench process. `product` is the shipped entry point (`dist/main.js`, built by `npm run bench`)
 * configured as a deployment would be, against the simulator as its ERP; `naive` is the bench-only naive resolver set;
 * `floor` is the bare-undici floor (bench/floor-server.ts), configured by FLOOR_* variables in `env`.
 */
export interface SubgraphProcess {
  readonly url: string;
  readonly pid: number;
  /** The kernel's high-water mark of resident memory (VmHWM), in MB: the true peak, not a sample. */
  peakRssMb(): number | undefined;
  /** Starts a new high-water mark (Linux `clear_refs` 5), so each workload's peak can be read on its own. */
  resetPeak(): void;
  /** CPU time the process has used so far (user + system, from /proc/PID/stat), in ms; undefined without /proc. */
  cpuMs(): number | undefined;
  /** The same for its main thread alone (the event loop; not GC helpers or libuv's pool). */
  mainThreadCpuMs(): number | undefined;
  /** With `monitorLoop`: the event loop's delay since the last call (bench/loop-monitor.ts); else undefined. */
  loopDelay(): Promise<LoopDelay | undefined>;
  close(): Promise<void>;
}

export interface SpawnOptions {
  erpUrl: string;
  mode: 'product' | 'naive' | 'floor';
  env?: Record<string, string>;
  /** Node flags for the child; the product defaults to the flags of `npm start`. */
  execArgv?: string[];
  /** Preload bench/loop-monitor.ts, so that `loopDelay()` can ask the child how late its event loop runs. */
  monitorLoop?: boolean;
  /**
   * The product from another checkout of this project with its `dist/` built (e.g. the code before a change), started
   * with that checkout's `npm start` flags; this one by default.
   */
  productRoot?: string;
}

/** Event loop delay in ms: mean, median, 99th percentile and maximum. */
export interface LoopDelay {
  mean: number;
  p50: number;
  p99: number;
  max: number;
}

const ROOT = join(__dirname, '..');

/** The node flags `npm start` runs the product with (package.json), so the bench measures what ships. */
export function startFlags(root = ROOT): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
  // `exec node ...`: the shell npm runs the script in becomes node, so node is npm's own child (see src/main.ts).
  const words = pkg.scripts.start.trim().split(/\s+/).filter((w) => w !== 'exec');
  if (words[0] !== 'node') throw new Error(`cannot read node flags from the start script '${pkg.scripts.start}'`);
  return words.slice(1).filter((w) => w.startsWith('--'));
}

/** A free loopback port (the kernel picks it; closed again at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A memory figure of a process from /proc, in MB; undefined where there is no /proc or the process is gone. */
export function statusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field}:`));
    const kb = line ? Number(line.split(/\s+/)[1]) : NaN;
    return Number.isFinite(kb) ? Math.round(kb / 1024) : undefined;
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** CPU time used by a process (utime + stime, all its threads; not its children), or by one thread `tid`, in ms. */
export function processCpuMs(pid: number, tid?: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

/**
 * A bench file that imports only node and packages (the floor, the loop monitor) as plain JavaScript: transpiled on
 * the fly, so it runs under plain node with the product's flags and carries no ts-node in its heap. Written under
 * node_modules so that packages (undici) resolve from the project.
 */
function transpiled(name: string): string {
  const source = readFileSync(join(ROOT, 'bench', `${name}.ts`), 'utf8');
  const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  const dir = join(ROOT, 'node_modules', '.cache', 'zb-bench');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.js`);
  writeFileSync(file, outputText);
  return file;
}

async function waitReady(child: ChildProcess, url: string, timeoutMs: number): Promise<void> {
  let exited: string | undefined;
  child.once('exit', (code, signal) => (exited = `exited (${code ?? signal}) before it was ready`));
  const until = Date.now() + timeoutMs;
  // Polled like an orchestrator's readiness probe; ready also means the ERP login has been made.
  while (Date.now() < until) {
    if (exited) throw new Error(`subgraph ${exited}`);
    const ok = await fetch(`${url}/health/ready`).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`subgraph not ready after ${timeoutMs} ms`);
}

export async function spawnSubgraph(options: SpawnOptions): Promise<SubgraphProcess> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    ZB_BASE_URL: options.erpUrl,
    ZB_USER: DEFAULT_SIMULATOR_USER,
    ZB_PASSWORD: DEFAULT_SIMULATOR_PASSWORD,
    // Production defaults to per-user sessions; the bench acts as the service account.
    ZB_SESSION_HEADER_REQUIRED: 'false',
    ZB_LOG_LEVEL: 'error',
    ZB_MAX_COST: '100000',
    ...options.env,
  };
  const [entry, flags] =
    options.mode === 'product'
      ? [join(options.productRoot ?? ROOT, 'dist', 'main.js'), options.execArgv ?? startFlags(options.productRoot)]
      : options.mode === 'floor'
        ? [transpiled('floor-server'), options.execArgv ?? startFlags()]
        : [join(ROOT, 'bench', 'naive-subgraph.ts'), ['-r', 'ts-node/register/transpile-only']];
  const execArgv = options.monitorLoop ? [...flags, '-r', transpiled('loop-monitor')] : flags;
  const child = fork(entry, [], { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(child, base, 30000);
  const pid = child.pid!;
  return {
    url: `${base}/graphql`,
    pid,
    peakRssMb: () => statusMb(pid, 'VmHWM'),
    cpuMs: () => processCpuMs(pid),
    mainThreadCpuMs: () => processCpuMs(pid, pid),
    loopDelay: () =>
      options.monitorLoop && child.connected
        ? new Promise<LoopDelay | undefined>((resolve) => {
            const timer = setTimeout(() => resolve(undefined), 2000);
            child.once('message', (m: { loopDelay?: LoopDelay }) => {
              clearTimeout(timer);
              resolve(m.loopDelay);
            });
            child.send('loop-delay?');
          })
        : Promise.resolve(undefined),
    resetPeak: () => {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        // Not Linux, or not allowed: the peak then covers everything since start.
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
