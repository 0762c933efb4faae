import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from '../src/simulator/users';

/**
 * The subgraph under measurement runs in a process of its own, so its memory is its own: the simulator and the load
 * tool stay in the bench process. `product` is the shipped entry point (`dist/main.js`, built by `npm run bench`)
 * configured as a deployment would be, against the simulator as its ERP; `naive` is the bench-only naive resolver set.
 */
export interface SubgraphProcess {
  readonly url: string;
  readonly pid: number;
  /** The kernel's high-water mark of resident memory (VmHWM), in MB: the true peak, not a sample. */
  peakRssMb(): number | undefined;
  /** Starts a new high-water mark (Linux `clear_refs` 5), so each workload's peak can be read on its own. */
  resetPeak(): void;
  close(): Promise<void>;
}

export interface SpawnOptions {
  erpUrl: string;
  mode: 'product' | 'naive';
  env?: Record<string, string>;
  /** Node flags for the child; the product defaults to the flags of `npm start`. */
  execArgv?: string[];
}

const ROOT = join(__dirname, '..');

/** The node flags `npm start` runs the product with (package.json), so the bench measures what ships. */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
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
  const [entry, execArgv] =
    options.mode === 'product'
      ? [join(ROOT, 'dist', 'main.js'), options.execArgv ?? startFlags()]
      : [join(ROOT, 'bench', 'naive-subgraph.ts'), ['-r', 'ts-node/register/transpile-only']];
  const child = fork(entry, [], { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const base = `http://127.0.0.1:${port}`;
  await waitReady(child, base, 30000);
  const pid = child.pid!;
  return {
    url: `${base}/graphql`,
    pid,
    peakRssMb: () => statusMb(pid, 'VmHWM'),
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
