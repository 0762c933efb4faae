import { Session } from 'node:inspector/promises';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/server/logger';
import { startApp } from '../src/server/app';
import { startSimulator } from '../src/simulator/server';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from '../src/simulator/users';

/**
 * `npm run bench:alloc`: where the subgraph allocates, per GraphQL operation. V8's sampling heap profiler runs over
 * ALLOC_OPS operations, one at a time, counting objects the GC has already collected too (peak memory under load is
 * mostly short-lived garbage promoted while requests wait on the ERP). Every sample is charged to the nearest frame in
 * our code or a package; the simulator runs in this process and is listed apart.
 *
 * The default query is workload (b) of `npm run bench`, a list of 20 with detail-only fields, a different page each
 * time (PAGE in ALLOC_QUERY is replaced by 1..16 in turn), so that every operation parses and validates its document
 * and reads other services, as a gateway's traffic would.
 *
 * Env: ALLOC_OPS (200), ALLOC_QUERY, ALLOC_ROWS (20: lines per table).
 */
interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

const OPS = Number(process.env.ALLOC_OPS ?? 200);
const QUERY = process.env.ALLOC_QUERY ?? '{ afterSaleServices(pageSize: 20, page: PAGE) { items { id title content handlingContent remark } } }';
const ROWS = Number(process.env.ALLOC_ROWS ?? 20);
/** The simulator's default data set shows 16 full pages of 20. */
const PAGES = 16;
const ROOT = `${process.cwd()}/`;

function owner(url: string): string | undefined {
  const path = url.replace(/^file:\/\//, '').replace(ROOT, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (pkg) return pkg[1];
  return path.startsWith('src/') ? path : undefined;
}

function table(totals: Map<string, number>, rows: number): string {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([name, bytes]) => `${(bytes / OPS / 1024).toFixed(1).padStart(9)} KB/op  ${name}`)
    .join('\n');
}

async function main(): Promise<void> {
  const sim = await startSimulator({ sessionTimeoutMs: 0 });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'production', ZB_SESSION_HEADER_REQUIRED: 'false', ZB_LOG_LEVEL: 'error', ZB_MAX_COST: '100000' });
  const app = await startApp({ config, erpBaseUrl: sim.url, credentials: { user: DEFAULT_SIMULATOR_USER, password: DEFAULT_SIMULATOR_PASSWORD, serialnum: 'alloc' }, logger: createLogger('error') });
  let sent = 0;
  const op = () => {
    const query = QUERY.replaceAll('PAGE', String(1 + (sent++ % PAGES)));
    return fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) }).then((r) => r.text());
  };
  // Warm up first: lazy compilation and first-use caches are not per-operation costs.
  for (let i = 0; i < 50; i++) await op();

  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  for (let i = 0; i < OPS; i++) await op();
  const { profile } = await session.post('HeapProfiler.stopSampling');
  session.disconnect();

  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let subgraph = 0;
  let simulator = 0;
  const walk = (node: ProfileNode, nearest: string | undefined) => {
    const own = owner(node.callFrame.url) ?? nearest;
    if (node.selfSize > 0) {
      const who = own ?? '(node internals)';
      if (who.startsWith('src/simulator/') || who === 'json5') simulator += node.selfSize;
      else {
        subgraph += node.selfSize;
        byOwner.set(who, (byOwner.get(who) ?? 0) + node.selfSize);
        const fn = `${node.callFrame.functionName || '(anonymous)'} ${owner(node.callFrame.url) ?? node.callFrame.url}:${node.callFrame.lineNumber + 1}`;
        byFunction.set(fn, (byFunction.get(fn) ?? 0) + node.selfSize);
      }
    }
    for (const child of node.children) walk(child, own);
  };
  walk(profile.head as unknown as ProfileNode, undefined);

  console.log(`query: ${QUERY}`);
  console.log(`${OPS} operations; sampled allocation per operation: subgraph ${(subgraph / OPS / 1024).toFixed(0)} KB, simulator ${(simulator / OPS / 1024).toFixed(0)} KB`);
  console.log(`--- subgraph, by nearest own module or package\n${table(byOwner, ROWS)}`);
  console.log(`--- subgraph, by allocating function\n${table(byFunction, ROWS)}`);
  await app.close();
  await sim.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
