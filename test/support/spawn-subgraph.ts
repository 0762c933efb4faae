import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startFlags } from '../../bench/subgraph-process';

/**
 * The shipped entry point as users run it: `node <npm start flags> dist/main.js`, configured only by environment
 * variables. Every child is tracked so a failing test still kills it (stopAll), and every wait is bounded.
 */
const ROOT = join(__dirname, '..', '..');
export const DIST_MAIN = join(ROOT, 'dist', 'main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Builds dist/ when it is missing or older than src/ (`npm test` builds in pretest; this covers `npx jest <file>`).
 * A lock keeps two jest workers from compiling over each other. Type errors elsewhere do not stop tsc emitting.
 */
export function ensureBuilt(): void {
  const stale = () => !existsSync(DIST_MAIN) || statSync(DIST_MAIN).mtimeMs < newestMtime(join(ROOT, 'src'));
  if (stale()) {
    const lock = join(tmpdir(), `zb-subgraph-build-${Buffer.from(ROOT).toString('hex').slice(-32)}.lock`);
    let owner = false;
    const until = Date.now() + 120_000;
    while (!owner && Date.now() < until) {
      try {
        mkdirSync(lock);
        owner = true;
      } catch {
        sleepSync(200); // another worker is building
        if (!existsSync(lock)) break;
      }
    }
    try {
      if (owner && stale()) {
        try {
          execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], {
            cwd: ROOT,
            stdio: 'pipe',
            timeout: 120_000,
          });
        } catch {
          // tsc exits non-zero on type errors but still emits; only a missing entry point is fatal (below).
        }
      }
    } finally {
      if (owner) rmSync(lock, { recursive: true, force: true });
    }
  }
  if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` first (\`npm test\` does it in pretest)`);
}


const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** `undefined` removes a variable. Nothing is inherited from the test process (jest sets NODE_ENV=test). */
export type ChildEnv = Record<string, string | undefined>;

function childEnv(env: ChildEnv): Record<string, string> {
  const merged: ChildEnv = { PATH: process.env.PATH, HOST: '127.0.0.1', ZB_LOG_LEVEL: 'warn', ...env };
  return Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
}

interface Launched {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(env: ChildEnv): Launched {
  const child = spawn(process.execPath, [...startFlags(), DIST_MAIN], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const out: string[] = [];
  const err: string[] = [];
  // Bounded capture: enough to explain a failure, never a memory leak in a long run.
  const keep = (buf: string[], chunk: Buffer) => {
    buf.push(chunk.toString('utf8'));
    if (buf.length > 200) buf.shift();
  };
  child.stdout?.on('data', (c: Buffer) => keep(out, c));
  child.stderr?.on('data', (c: Buffer) => keep(err, c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => out.join(''), stderr: () => err.join(''), exited };
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function stop(launched: Launched): Promise<void> {
  const { child } = launched;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  if ((await within(launched.exited, 5000)) !== 'timeout') return;
  child.kill('SIGKILL');
  await within(launched.exited, 5000);
}

export interface ChildSubgraph {
  /** http://127.0.0.1:<port> */
  readonly base: string;
  readonly pid: number;
  /** Recent stdout and stderr, for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts dist/main.js on a free port and resolves once /health/live answers (the embedded simulator when ZB_BASE_URL is unset). */
export async function startSubgraph(env: ChildEnv, readyTimeoutMs = 20_000): Promise<ChildSubgraph> {
  ensureBuilt();
  const port = await freePort();
  const launched = launch({ PORT: String(port), ...env });
  const base = `http://127.0.0.1:${port}`;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void launched.exited.then((e) => (exit = e));
  const until = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exit) throw new Error(`dist/main.js exited (${exit.code ?? exit.signal}) before it was ready:\n${launched.stderr()}${launched.stdout()}`);
    const ok = await fetch(`${base}/health/live`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > until) {
      await stop(launched);
      throw new Error(`dist/main.js not live after ${readyTimeoutMs} ms:\n${launched.stderr()}${launched.stdout()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    base,
    pid: launched.child.pid ?? -1,
    output: () => launched.stderr() + launched.stdout(),
    stop: () => stop(launched),
  };
}

/** Runs dist/main.js expecting it to exit by itself (a configuration error); killed if it is still up after timeoutMs. */
export async function runUntilExit(env: ChildEnv, timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  ensureBuilt();
  // A free port unless the test sets PORT, so a configuration that wrongly passes cannot collide with anything.
  const launched = launch({ PORT: String(await freePort()), ...env });
  const result = await within(launched.exited, timeoutMs);
  if (result === 'timeout') {
    await stop(launched);
    throw new Error(`dist/main.js still running after ${timeoutMs} ms:\n${launched.stderr()}${launched.stdout()}`);
  }
  return { ...result, stdout: launched.stdout(), stderr: launched.stderr() };
}

/** Kills every child still running (afterAll), so a failed assertion never leaves a server behind. */
export async function stopAllSubgraphs(): Promise<void> {
  await Promise.all(
    [...live].map(async (child) => {
      child.kill('SIGKILL');
      await within(new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))), 5000);
    }),
  );
}

export { freePort };
