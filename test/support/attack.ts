import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { Pool } from 'undici';
import { freePort, startFlags, statusMb } from '../../bench/subgraph-process';

/**
 * Shared pieces of the abuse suite (test/abuse-*.test.ts): the shipped entry point as a child process started with
 * `npm start`'s node flags, its memory high-water mark, bounded attack drivers, and response classification. Every
 * wait is bounded; every child is killed by pid when a test file ends, even after a failure.
 */
const ROOT = join(__dirname, '..', '..');
/** The shipped entry point. ABUSE_MAIN points the suite at another build (e.g. one made before a fix, to see it fail). */
export const ENTRY = process.env.ABUSE_MAIN ?? join(ROOT, 'dist', 'main.js');
/** The documented bound on the whole process's resident memory (README, "Memory"). */
export const RSS_BOUND_MB = 200;
export const SIM_USER = 'admin';
export const SIM_PASSWORD = 'zb-sim-admin';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Settles with 'timeout' after `ms`: for waits that must end even when what they wait on never comes. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls an (async) condition until it holds; the bound turns a condition that never comes into a failure. */
export async function poll(condition: () => boolean | Promise<boolean>, what: string, boundMs: number, intervalMs = 20): Promise<void> {
  const give = Date.now() + boundMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > give) throw new Error(`never reached within ${boundMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** What a child wrote, kept as a bounded tail (a flood of log lines must not grow the test process). */
export class OutputTail {
  private chunks: string[] = [];
  private kept = 0;
  private currentLine = 0;
  /** Bytes written since start. */
  total = 0;
  /** Longest line seen, in characters. */
  longestLine = 0;

  constructor(private readonly maxChars = 256 * 1024) {}

  push(chunk: Buffer): void {
    const text = chunk.toString('utf8');
    this.total += chunk.length;
    for (const part of text.split('\n').slice(0, -1)) {
      this.longestLine = Math.max(this.longestLine, this.currentLine + part.length);
      this.currentLine = 0;
    }
    this.currentLine += text.length - (text.lastIndexOf('\n') + 1);
    this.longestLine = Math.max(this.longestLine, this.currentLine);
    this.chunks.push(text);
    this.kept += text.length;
    while (this.kept > this.maxChars && this.chunks.length > 1) this.kept -= this.chunks.shift()!.length;
  }

  /** The last `chars` characters kept. */
  tail(chars = 4000): string {
    const text = this.chunks.join('');
    return text.slice(Math.max(0, text.length - chars));
  }
}

export interface SubgraphChild {
  /** http://127.0.0.1:<port> */
  readonly base: string;
  readonly port: number;
  readonly pid: number;
  readonly output: OutputTail;
  /** What the child wrote on stderr alone (it is in `output` too): Node's own warnings land here. */
  readonly stderr: OutputTail;
  readonly exited: Promise<Exit>;
  /** The exit, once it happened. */
  exit(): Exit | undefined;
  /** The kernel's high-water mark of resident memory (VmHWM) since the child started, MB. */
  peakRssMb(): number | undefined;
  signal(signal: NodeJS.Signals): void;
  /** SIGKILL and wait (bounded). */
  kill(): Promise<void>;
  /** For failure messages: exit state and the last output lines. */
  describe(): string;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});



/**
 * Starts `node <npm start flags> dist/main.js` against `simUrl` with the deployment's environment plus `env`, and
 * resolves once /health/ready answers 200 (the ERP login is made). Nothing is inherited from jest's environment.
 */
/** `answered`: when the child counts as started, by its /health/ready status (default 200: it holds an ERP session). */
export async function startSubgraphChild(
  simUrl: string,
  env: Record<string, string> = {},
  readyMs = 30000,
  answered: (status: number) => boolean = (status) => status === 200,
): Promise<SubgraphChild> {
  if (!existsSync(ENTRY)) throw new Error(`${ENTRY} is missing: run \`npm run build\` first`);
  const port = await freePort();
  const childEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    ZB_BASE_URL: simUrl,
    ZB_USER: SIM_USER,
    ZB_PASSWORD: SIM_PASSWORD,
    ZB_SESSION_HEADER_REQUIRED: 'false',
    ZB_LOG_LEVEL: 'warn',
    ...env,
  };
  const child = spawn(process.execPath, [...startFlags(), ENTRY], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const output = new OutputTail();
  const stderr = new OutputTail(64 * 1024);
  child.stdout?.on('data', (c: Buffer) => output.push(c));
  child.stderr?.on('data', (c: Buffer) => {
    output.push(c);
    stderr.push(c);
  });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      live.delete(child);
      exit = { code, signal };
      resolve(exit);
    });
  });
  const pid = child.pid ?? -1;
  const base = `http://127.0.0.1:${port}`;
  const handle: SubgraphChild = {
    base,
    port,
    pid,
    output,
    stderr,
    exited,
    exit: () => exit,
    peakRssMb: () => statusMb(pid, 'VmHWM'),
    signal: (s) => {
      if (!exit) child.kill(s);
    },
    kill: async () => {
      if (exit) return;
      child.kill('SIGKILL');
      await within(exited, 5000);
    },
    describe: () => `child pid ${pid} ${exit ? `exited (code ${exit.code}, signal ${exit.signal})` : 'running'}; last output:\n${output.tail(3000)}`,
  };
  try {
    await poll(
      async () => {
        if (exit) throw new Error(`dist/main.js exited before it was ready: ${handle.describe()}`);
        return fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(2000) }).then((r) => answered(r.status), () => false);
      },
      'the child answers /health/ready as expected',
      readyMs,
      50,
    );
  } catch (e) {
    await handle.kill();
    throw e;
  }
  return handle;
}

/** Kills every child still running (afterAll), so a failed assertion never leaves a server behind. */
export async function killAllChildren(): Promise<void> {
  await Promise.all(
    [...live].map(async (child) => {
      const gone = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
      child.kill('SIGKILL');
      await within(gone, 5000);
    }),
  );
}

export interface HttpResult {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One request with a hard bound on its whole time (headers and body). */
export async function request(
  pool: Pool,
  options: { method: 'GET' | 'POST'; path: string; body?: string; headers?: Record<string, string>; timeoutMs?: number },
): Promise<HttpResult> {
  const timeoutMs = options.timeoutMs ?? 30000;
  const res = await pool.request({
    method: options.method,
    path: options.path,
    headers: { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
    ...(options.body !== undefined ? { body: options.body } : {}),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

export interface GqlBody {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: { code?: string } & Record<string, unknown> }>;
}

export function parseGql(text: string): GqlBody | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' ? (v as GqlBody) : undefined;
  } catch {
    return undefined;
  }
}

export function errorCodes(body: GqlBody | undefined): string[] {
  return [...new Set((body?.errors ?? []).map((e) => e.extensions?.code ?? '(no code)'))].sort();
}

/**
 * One GraphQL response as a short outcome key: `200:data` (data, no errors), `200:data+CODES` (data with some
 * errors), `400:COST_ESTIMATED_TOO_EXPENSIVE`, `503:SERVER_BUSY` (with Retry-After), or anything else spelled out.
 */
export function classify(r: HttpResult): string {
  const body = parseGql(r.text);
  if (!body) return `${r.status}:not-json`;
  const codes = errorCodes(body).join(',');
  if (r.status === 200 && body.data) return codes ? `200:data+${codes}` : '200:data';
  if (r.status === 503 && codes === 'SERVER_BUSY' && r.headers['retry-after'] === undefined) return '503:SERVER_BUSY:no-retry-after';
  return `${r.status}:${codes || 'no-errors'}${body.data === undefined ? '' : ':data'}`;
}

export interface Tally {
  requests: number;
  /** Outcome key -> count. Socket errors are keyed `socket:<code>`. */
  outcomes: Record<string, number>;
  /** First few bodies of each unexpected outcome, for failure messages. */
  samples: Record<string, string>;
  elapsedMs: number;
}

export function socketErrors(t: Tally): number {
  return Object.entries(t.outcomes)
    .filter(([k]) => k.startsWith('socket:'))
    .reduce((n, [, v]) => n + v, 0);
}

/** Outcomes outside `allowed`, with a sample each: empty when the attack was answered only as the fix promises. */
export function unexpected(t: Tally, allowed: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, count] of Object.entries(t.outcomes)) {
    if (!allowed.includes(key)) out[key] = `${count}x, e.g. ${t.samples[key] ?? ''}`;
  }
  return out;
}

/**
 * `clients` loops posting to /graphql over a pool of as many connections, until `total` requests were sent or
 * `durationMs` passed, whichever is first; it stops early once `stop()` holds (the child died: no point hammering a
 * closed port). Each request is bounded by `timeoutMs`.
 */
export async function drive(options: {
  base: string;
  clients: number;
  body: (client: number, seq: number) => string;
  total?: number;
  durationMs?: number;
  timeoutMs?: number;
  stop?: () => boolean;
  path?: string;
}): Promise<Tally> {
  const pool = new Pool(options.base, { connections: options.clients, pipelining: 1 });
  const tally: Tally = { requests: 0, outcomes: {}, samples: {}, elapsedMs: 0 };
  const started = Date.now();
  const endAt = started + (options.durationMs ?? 120000);
  const total = options.total ?? Number.POSITIVE_INFINITY;
  let issued = 0;
  const note = (key: string, sample: string) => {
    tally.outcomes[key] = (tally.outcomes[key] ?? 0) + 1;
    if (!(key in tally.samples)) tally.samples[key] = sample.slice(0, 300);
  };
  const client = async (index: number) => {
    for (let seq = 0; issued < total && Date.now() < endAt && !options.stop?.(); seq++) {
      issued++;
      try {
        const r = await request(pool, { method: 'POST', path: options.path ?? '/graphql', body: options.body(index, seq), timeoutMs: options.timeoutMs ?? 30000 });
        note(classify(r), r.text);
      } catch (e) {
        const err = e as { code?: string; name?: string; message?: string };
        note(`socket:${err.code ?? err.name ?? 'error'}`, String(err.message));
      }
      tally.requests++;
    }
  };
  try {
    await Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)));
  } finally {
    tally.elapsedMs = Date.now() - started;
    await within(pool.destroy(), 5000);
  }
  return tally;
}

/** A short list query every healthy server answers: the "still answers a normal query" check after each attack. */
export const NORMAL_QUERY = '{ afterSaleServices(pageSize: 3) { items { id title } } }';

export async function normalQuery(base: string, timeoutMs = 15000): Promise<{ status: number; items: number; text: string }> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: NORMAL_QUERY }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const body = parseGql(text) as { data?: { afterSaleServices?: { items?: unknown[] } } } | undefined;
  return { status: res.status, items: body?.data?.afterSaleServices?.items?.length ?? -1, text: text.slice(0, 500) };
}

export async function getText(url: string, timeoutMs = 15000): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, text: await res.text() };
}

/** The value of an unlabelled gauge in a Prometheus text page (undefined when absent). */
export function gaugeValue(metricsText: string, name: string): number | undefined {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : undefined;
}

/** The sub-selection of `AfterSaleErpField` used by the heavy shapes. */
export function erpFieldSelection(): string {
  return 'key caption text value';
}

export interface RawConnection {
  readonly socket: net.Socket;
  /** First bytes the server sent (a status line when it answered before closing). */
  received: string;
  /** When the connection closed (Date.now()), by either side. */
  closedAt?: number;
  error?: string;
}

/** Opens `count` raw TCP connections and resolves once each is connected and has written `first` (bounded). */
export async function openConnections(port: number, count: number, first: string | undefined, boundMs = 10000): Promise<RawConnection[]> {
  const conns = Array.from({ length: count }, () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const conn: RawConnection = { socket, received: '' };
    socket.on('data', (c: Buffer) => {
      if (conn.received.length < 200) conn.received += c.toString('latin1').slice(0, 200 - conn.received.length);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => (conn.error ??= e.code ?? e.message));
    socket.on('close', () => (conn.closedAt ??= Date.now()));
    return conn;
  });
  // Settled: connected and `first` handed to the kernel, or already closed (e.g. dropped by the server on accept).
  const settled = new Set<RawConnection>();
  for (const c of conns) {
    c.socket.once('close', () => settled.add(c));
    c.socket.once('connect', () => {
      if (first === undefined) settled.add(c);
      else c.socket.write(first, () => settled.add(c));
    });
  }
  await poll(() => settled.size >= count, `${count} connections open`, boundMs, 10);
  return conns;
}

/**
 * Slow-body clients: each sends complete headers announcing `contentLength` bytes, then one body byte, then one more
 * every `everyMs` while the server keeps the connection open. `stop()` destroys whatever is left.
 */
export async function trickle(port: number, count: number, contentLength = 1000, everyMs = 2000): Promise<{ conns: RawConnection[]; open(): number; stop(): void }> {
  const head = `POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n\r\n{`;
  const conns = await openConnections(port, count, head);
  const timer = setInterval(() => {
    for (const c of conns) if (c.closedAt === undefined && c.socket.writable) c.socket.write(' ');
  }, everyMs);
  return {
    conns,
    open: () => conns.filter((c) => c.closedAt === undefined).length,
    stop: () => {
      clearInterval(timer);
      for (const c of conns) c.socket.destroy();
    },
  };
}

/** GET on a connection of its own (no keep-alive reuse): a status, or the socket error code (e.g. ECONNREFUSED). */
export function freshGet(url: string, timeoutMs = 3000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = httpGet(url, { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** Whether a new TCP connection to the port is accepted (and not dropped at once), within `timeoutMs`. */
export function connectResult(port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code ?? e.message);
    });
  });
}

export { freePort };
