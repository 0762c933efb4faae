import { startSimulator, type Simulator } from '../src/simulator/server';
import { killAllChildren, parseGql, SIM_PASSWORD, SIM_USER, startSubgraphChild, within, type SubgraphChild } from './support/attack';
import { ensureBuilt } from './support/spawn-subgraph';

/**
 * Issue 14, item 4: a query with several aliased pages printed Node's `MaxListenersExceededWarning: Possible
 * EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]` on stderr. Every layer that waits
 * listened on the request's own signal, once per ERP call in flight: the fix is one listener per request
 * (erp/layers/signal.ts), not a higher limit. The shipped entry point runs as a child process, so whatever Node prints
 * is seen; the ERP answers in 5-20 ms, so the calls overlap.
 */
const PAGES = 4;
const PAGE_SIZE = 100;
const QUERY = `{ ${Array.from({ length: PAGES }, (_, i) => `p${i + 1}: afterSaleServices(page: ${i + 1}, pageSize: ${PAGE_SIZE}) { items { id title content handlingContent } }`).join(' ')} }`;
/** 4 list calls and 400 detail calls, 400 items: within these limits, far beyond the defaults. */
const LIMITS = { ZB_MAX_ERP_CALLS_PER_OPERATION: '500', ZB_MAX_ITEMS_PER_OPERATION: '1000' };

let sim: Simulator;
beforeAll(async () => {
  ensureBuilt();
  // More services than 4 pages of 100 show, so every page is full.
  sim = await startSimulator({ user: SIM_USER, password: SIM_PASSWORD, dataset: { services: 450 }, faults: { latencyMs: 5 } });
});
afterAll(async () => {
  await killAllChildren();
  await sim.close();
});

/**
 * The next `calls` ERP calls answer after 5 ms plus 0-15 ms, varied, so replies arrive out of order; the first
 * `failures` detail calls fail with HTTP 500 instead (scripted faults are taken first come, first matched).
 */
function scriptErp(calls: number, failures: number): void {
  sim.faults.reset();
  sim.faults.configure({ latencyMs: 5 });
  for (let i = 0; i < failures; i++) sim.faults.inject({ kind: 'http500', endpoint: 'detail' });
  for (let i = 0; i < calls; i++) sim.faults.inject({ kind: 'hold', delayMs: (i * 7) % 16 });
}

async function run(child: SubgraphChild): Promise<void> {
  const res = await fetch(`${child.base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: QUERY }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  const body = parseGql(text) as { data?: Record<string, { items: unknown[] }>; errors?: unknown[] } | undefined;
  expect({ status: res.status, errors: body?.errors }).toEqual({ status: 200, errors: undefined });
  for (let i = 1; i <= PAGES; i++) expect(body?.data?.[`p${i}`]?.items).toHaveLength(PAGE_SIZE);
}

async function expectSilentStderr(child: SubgraphChild): Promise<void> {
  // A warning is printed on a later tick than the listener that caused it.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect({ stderrBytes: child.stderr.total, stderr: child.stderr.tail(2000) }).toEqual({ stderrBytes: 0, stderr: '' });
}

describe('4 aliased pages of 100 with detail fields print nothing on stderr', () => {
  it.each<[string, Record<string, string>, number]>([
    ['default ERP settings', {}, 1],
    // 32 of one request's calls at once: 32 coalesced waiters, before the fix each a listener on the request's signal.
    ['32 calls of the request at once', { ZB_DETAIL_CONCURRENCY: '32', ZB_MAX_CONCURRENT_CALLS: '32' }, 1],
    // No coalescing: the limiter's queue, the transport's deadlines and retry backoffs listen instead; two operations
    // at once fill the process's 12 slots, so half of the calls queue; a few ERP failures are retried.
    ['no coalescing, calls queued, retries', { ZB_COALESCE: 'false', ZB_DETAIL_CONCURRENCY: '12', ZB_MAX_CONCURRENT_CALLS: '12', ZB_RETRY_BASE_MS: '5', ZB_RETRY_MAX_MS: '20' }, 2],
  ])('%s', async (_name, env, operations) => {
    const child = await startSubgraphChild(sim.url, { ...LIMITS, ...env });
    try {
      // With two operations, three detail calls fail once and are retried.
      scriptErp(operations * (PAGES + PAGES * PAGE_SIZE) + 50, operations > 1 ? 3 : 0);
      await Promise.all(Array.from({ length: operations }, () => run(child)));
      await expectSilentStderr(child);
      expect(child.exit()).toBeUndefined();
    } finally {
      await child.kill();
      await within(child.exited, 5000);
    }
  }, 60_000);
});
