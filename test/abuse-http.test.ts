import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { startSimulator, type Simulator } from '../src/simulator/server';
import {
  connectResult,
  freePort,
  freshGet,
  gaugeValue,
  getText,
  killAllChildren,
  normalQuery,
  openConnections,
  parseGql,
  poll,
  RSS_BOUND_MB,
  SIM_PASSWORD,
  SIM_USER,
  startSubgraphChild,
  trickle,
  within,
  type SubgraphChild,
} from './support/attack';

/**
 * The abuse suite, HTTP side: slow clients and shutdown, against the shipped entry point as a child process (`npm
 * start`'s node flags) with the simulator in this process as its ERP. Every child is killed by pid in afterAll.
 */
const BODY_TIMEOUT_MS = 1500;
const KEEP_ALIVE_TIMEOUT_MS = 1000;
/** Node checks request timeouts once a second (connectionsCheckingInterval), so a timeout fires up to 1 s late. */
const CHECK_SLACK_MS = 1000;

let sim: Simulator;
const figures: string[] = [];

beforeAll(async () => {
  sim = await startSimulator({ user: SIM_USER, password: SIM_PASSWORD, sessionTimeoutMs: 0 });
});
afterAll(async () => {
  await killAllChildren();
  await sim?.close();
  if (figures.length) console.log(`abuse-http figures:\n  ${figures.join('\n  ')}`);
}, 20000);
beforeEach(() => {
  sim.faults.reset();
  sim.calls.clear();
});

function alive(child: SubgraphChild, after: string): void {
  if (child.exit()) throw new Error(`the subgraph died during: ${after}\n${child.describe()}`);
}

async function inFlightGauge(child: SubgraphChild): Promise<number | undefined> {
  const m = await getText(`${child.base}/metrics`);
  return gaugeValue(m.text, 'zb_graphql_in_flight');
}

describe('Slow request bodies hold every slot', () => {
  let child: SubgraphChild;
  beforeAll(async () => {
    child = await startSubgraphChild(sim.url, { ZB_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS), ZB_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS) });
  }, 40_000);
  afterAll(() => child?.kill());

  it('Slow request bodies hold every slot: 140 sockets trickling a 1,000-byte body leave a normal query served, hold no in-flight slot, and are closed by the server', async () => {
    const COUNT = 140; // above ZB_MAX_INFLIGHT_REQUESTS (128), below ZB_MAX_CLIENT_CONNECTIONS (256)
    const started = Date.now();
    const attack = await trickle(child.port, COUNT, 1000, 2000);
    try {
      // Barrier: a later connection answered means the server has read what the slow ones sent before it.
      expect(await freshGet(`${child.base}/health/live`)).toBe(200);
      const normal = await normalQuery(child.base, 10_000);
      const openWhenAnswered = attack.open();
      const inFlight = await inFlightGauge(child);
      figures.push(`slow bodies: normal query ${normal.status} with ${openWhenAnswered}/${COUNT} slow sockets open, zb_graphql_in_flight ${inFlight}`);
      expect({ status: normal.status, items: normal.items }).toEqual({ status: 200, items: 3 });
      // The query really was answered while the slow clients were connected.
      expect(openWhenAnswered).toBeGreaterThan(COUNT / 2);
      expect(inFlight).toBe(0);

      // The server closes them: ZB_BODY_TIMEOUT_MS, plus Node's check interval, plus margin for a loaded machine.
      const boundMs = BODY_TIMEOUT_MS + CHECK_SLACK_MS + 3000;
      await poll(() => attack.open() === 0, `the server closes all ${COUNT} slow sockets (${attack.open()} still open)`, boundMs, 50).catch((e: Error) => {
        throw new Error(`${e.message}; ${attack.open()} of ${COUNT} still open after ${Date.now() - started} ms`);
      });
      const closedAfter = attack.conns.map((c) => c.closedAt! - started);
      const answered408 = attack.conns.filter((c) => c.received.startsWith('HTTP/1.1 408')).length;
      figures.push(`slow bodies: all ${COUNT} closed by the server within ${Math.max(...closedAfter)} ms (first ${Math.min(...closedAfter)} ms), ${answered408} with a 408`);
      expect(attack.conns.every((c) => c.received === '' || /^HTTP\/1\.1 4\d\d/.test(c.received))).toBe(true);
    } finally {
      attack.stop();
    }
    alive(child, 'slow bodies');
    expect(await inFlightGauge(child)).toBe(0);
    const after = await normalQuery(child.base);
    expect({ status: after.status, items: after.items }).toEqual({ status: 200, items: 3 });
    const peak = child.peakRssMb();
    figures.push(`slow bodies: peak RSS ${peak} MB`);
    expect(peak!).toBeLessThan(RSS_BOUND_MB);
  }, 40_000);

  it('Slow request bodies hold every slot: an idle keep-alive connection is closed after ZB_KEEP_ALIVE_TIMEOUT_MS', async () => {
    const [conn] = await openConnections(child.port, 1, `GET /health/live HTTP/1.1\r\nHost: 127.0.0.1:${child.port}\r\n\r\n`);
    try {
      await poll(() => conn!.received.startsWith('HTTP/1.1 200'), 'the keep-alive request is answered', 5000, 10);
      const answeredAt = Date.now();
      const boundMs = KEEP_ALIVE_TIMEOUT_MS + CHECK_SLACK_MS + 2000;
      await poll(() => conn!.closedAt !== undefined, `the server closes the idle keep-alive connection within ${boundMs} ms`, boundMs, 20);
      figures.push(`keep-alive: idle connection closed ${conn!.closedAt! - answeredAt} ms after its response (ZB_KEEP_ALIVE_TIMEOUT_MS ${KEEP_ALIVE_TIMEOUT_MS})`);
    } finally {
      conn!.socket.destroy();
    }
    alive(child, 'keep-alive');
  }, 20_000);
});

it('Slow request bodies hold every slot: connections beyond ZB_MAX_CLIENT_CONNECTIONS are dropped, and the server recovers when they go', async () => {
  const MAX = 16;
  const child = await startSubgraphChild(sim.url, { ZB_MAX_CLIENT_CONNECTIONS: String(MAX), ZB_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) });
  try {
    const conns = await openConnections(child.port, 40, undefined);
    try {
      // Idle connections: the ones over the cap are dropped on accept (the rest time out later, or we close them).
      await poll(() => conns.filter((c) => c.closedAt !== undefined).length >= 40 - MAX, `at least ${40 - MAX} of 40 connections dropped`, 3000, 20).catch((e: Error) => {
        throw new Error(`${e.message}: ${conns.filter((c) => c.closedAt !== undefined).length} closed`);
      });
      figures.push(`connection cap ${MAX}: ${conns.filter((c) => c.closedAt !== undefined).length} of 40 idle connections dropped at once`);
    } finally {
      for (const c of conns) c.socket.destroy();
    }
    await poll(async () => (await normalQuery(child.base).catch(() => ({ status: 0 }))).status === 200, 'a normal query once the idle connections are gone', 10_000, 50);
    alive(child, 'connection cap');
  } finally {
    await child.kill();
  }
}, 40_000);

describe('SIGTERM cuts off saves', () => {
  const HANDLE = `mutation H($input: HandleServiceInput!) {
    handleService(input: $input) { outcome message userErrors { field code message } service { id handlingContent handlingResult } }
  }`;

  // Every ERP call takes `latency`: the save, then the re-read that confirms it (made after SIGTERM). The second case
  // outlasts a fixed 10 s stop (Apollo's default drain grace, and the old forced exit), well inside ZB_SHUTDOWN_TIMEOUT_MS.
  it.each([
    { latency: 2000, timeout: 5000, shutdown: 12_000, what: 'a ~2 s save' },
    { latency: 5500, timeout: 8000, shutdown: 20_000, what: 'a save and re-read longer than 10 s' },
  ])('SIGTERM cuts off saves: $what in flight completes as SAVED, readiness turns 503, the process exits 0 within ZB_SHUTDOWN_TIMEOUT_MS, new connections are refused', async ({ latency: SAVE_LATENCY_MS, timeout, shutdown: SHUTDOWN_TIMEOUT_MS }) => {
    const child = await startSubgraphChild(sim.url, { ZB_TIMEOUT_MS: String(timeout), ZB_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    try {
      sim.calls.clear();
      sim.faults.configure({ latencyMs: SAVE_LATENCY_MS });
      const note = `SIGTERM drain ${Date.now()}`;
      const response = fetch(`${child.base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: HANDLE, variables: { input: { id: '1010', assigneeId: '2', note, salespersonId: '5', result: '已解决' } } }),
        signal: AbortSignal.timeout(SHUTDOWN_TIMEOUT_MS + 5000),
      }).then(
        async (r) => ({ status: r.status, text: await r.text() }),
        (e: unknown) => ({ status: 0, text: `no response: ${String(e)}` }),
      );
      let answered = false;
      void response.then(() => (answered = true));
      await poll(() => sim.calls.count('process') === 1, 'the ERP received the save', 5000, 5);
      const signalled = Date.now();
      child.signal('SIGTERM');

      // Readiness must turn 503 while the save is still running (or new connections be refused already).
      const seen: { readiness: number | string; answeredBefore: boolean } = { readiness: 200, answeredBefore: false };
      await poll(
        async () => {
          seen.readiness = await freshGet(`${child.base}/health/ready`, 1000);
          seen.answeredBefore = answered;
          // A reset (a connection caught in the listener's closing) is no verdict: ask again on a new one.
          return seen.readiness === 503 || seen.readiness === 'ECONNREFUSED';
        },
        'readiness answers 503 (or the listener is closed) after SIGTERM',
        SAVE_LATENCY_MS,
        20,
      ).catch(() => undefined);
      figures.push(`SIGTERM, ERP latency ${SAVE_LATENCY_MS} ms: readiness after the signal ${seen.readiness} (${Date.now() - signalled} ms after it; save answered before: ${seen.answeredBefore})`);

      const r = await response;
      const exit = await within(child.exited, SHUTDOWN_TIMEOUT_MS + 2000);
      const exitedAfterMs = Date.now() - signalled;
      figures.push(`SIGTERM, ERP latency ${SAVE_LATENCY_MS} ms: save answered ${r.status}, exit ${JSON.stringify(exit)} ${exitedAfterMs} ms after the signal`);
      const body = parseGql(r.text) as { data?: { handleService?: { outcome?: string; service?: { handlingContent?: string } | null } } } | undefined;
      expect({ status: r.status, outcome: body?.data?.handleService?.outcome, handlingContent: body?.data?.handleService?.service?.handlingContent }).toEqual({
        status: 200,
        outcome: 'SAVED',
        handlingContent: note,
      });
      expect(sim.calls.count('process')).toBe(1);
      // 503 while the save ran is the fix; a refused connection is acceptable (the server stopped listening first).
      expect({ readiness: [503, 'ECONNREFUSED'].includes(seen.readiness) ? 'not ready' : seen.readiness, answeredBefore: seen.answeredBefore }).toEqual({
        readiness: 'not ready',
        answeredBefore: false,
      });
      expect(exit).toEqual({ code: 0, signal: null });
      expect(exitedAfterMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
      expect(await connectResult(child.port)).toBe('ECONNREFUSED');
    } finally {
      sim.faults.configure({ latencyMs: 0 });
      await child.kill();
    }
  }, 45_000);
});

describe('SIGTERM to `npm start`', () => {
  it('npm does not forward the signal, so node notices its parent is gone and shuts down cleanly within seconds', async () => {
    const port = await freePort();
    // --ignore-scripts skips `prestart` (the build): `npm test` built dist/ already, and other suites are reading it.
    const npm = spawn('npm', ['start', '--ignore-scripts'], {
      cwd: join(__dirname, '..'),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(port), HOST: '127.0.0.1', ZB_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-4000)));
    npm.stderr?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-4000)));
    let nodePid: number | undefined;
    try {
      await poll(
        () => fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false),
        'npm start serves /health/ready',
        30000,
        100,
      );
      // The start script `exec`s node, so node is npm's direct child (no shell in between to keep it parented).
      nodePid = Number(execFileSync('pgrep', ['-P', String(npm.pid), '-f', '^node .*dist/main.js']).toString().trim().split('\n')[0]);
      expect(nodePid).toBeGreaterThan(0);
      npm.kill('SIGTERM');
      await poll(() => !pidAlive(nodePid!), 'the node process behind npm start exits', 10000, 100);
      expect(output).toMatch(/shutting down/);
    } finally {
      npm.kill('SIGKILL');
      if (nodePid !== undefined && pidAlive(nodePid)) process.kill(nodePid, 'SIGKILL');
    }
  }, 60000);
});

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('graceful stop with a drain period', () => {
  it('SIGTERM with ZB_SHUTDOWN_DRAIN_MS: readiness answers 503 while the listener still serves, then the process exits 0', async () => {
    const child = await startSubgraphChild(sim.url, { ZB_SHUTDOWN_DRAIN_MS: '1500', ZB_LOG_LEVEL: 'info' });
    try {
      const signalled = Date.now();
      child.signal('SIGTERM');
      await poll(async () => (await freshGet(`${child.base}/health/ready`)) === 503, 'readiness answers 503 during the drain', 1400, 20);
      // Still serving during the drain: a load balancer that has not noticed yet loses nothing.
      expect((await normalQuery(child.base)).status).toBe(200);
      const exit = await within(child.exited, 20000);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - signalled).toBeGreaterThanOrEqual(1500);
      expect(child.output.tail(20000)).toMatch(/"msg":"zb-aftersale-subgraph ready"[\s\S]*"msg":"shutting down"/);
    } finally {
      await child.kill();
    }
  }, 40000);
});
