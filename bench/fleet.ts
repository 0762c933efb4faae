import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import autocannon from 'autocannon';
import { startSimulator } from '../src/simulator/server';
import { freePort, spawnSubgraph, type SubgraphProcess } from './subgraph-process';

/**
 * `npm run build && npx ts-node --transpile-only bench/fleet.ts`: the same workload against one subgraph process and against a fleet of three replicas sharing
 * one Redis (started here on a free loopback port), each in front of a simulator with 20 ms latency that kicks an
 * account's older sessions on every new login. Prints throughput, ERP calls per operation, logins and the ERP's peak
 * concurrency side by side. Needs redis-server on PATH (or REDIS_SERVER).
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 60;
const FLEET_CAP = 8;
// Twenty list pages in rotation, each with details: a mixed read workload the caches and coalescing can share.
const bodies = Array.from({ length: 20 }, (_, i) => ({ query: `{ afterSaleServices(page: ${i + 1}, pageSize: 10) { items { id title handlingContent } } }` }));


async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.env.REDIS_SERVER ?? 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) return { url: `redis://127.0.0.1:${port}/0`, child };
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('redis-server did not start (is it installed? apt-get install -y redis-server)');
}

interface Figures {
  setup: string;
  rps: number;
  operations: number;
  erpCalls: number;
  logins: number;
  peak: number;
  non2xx: number;
}

/** Round-robin over the replicas: autocannon per replica, started together, with the connections split between them. */
async function run(setup: string, replicas: SubgraphProcess[], sim: Awaited<ReturnType<typeof startSimulator>>): Promise<Figures> {
  sim.calls.clear();
  const logins = sim.calls.count('login');
  const results = await Promise.all(
    replicas.map((r) =>
      autocannon({
        url: r.url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        connections: Math.ceil(CONNECTIONS / replicas.length),
        duration: SECONDS,
        requests: bodies.map((b) => ({ body: JSON.stringify(b) })),
      }),
    ),
  );
  const operations = results.reduce((n, r) => n + r.requests.total, 0);
  return {
    setup,
    rps: Math.round(results.reduce((n, r) => n + r.requests.average, 0)),
    operations,
    erpCalls: sim.calls.count(),
    logins: sim.calls.count('login') - logins,
    peak: sim.calls.peak(),
    non2xx: results.reduce((n, r) => n + r.non2xx + r.errors, 0),
  };
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const common = { ZB_CACHE_TTL_MS: '2000', ZB_MAX_COST: '100000' };
  const rows: Figures[] = [];
  try {
    {
      const sim = await startSimulator({ kickOlderSessions: true, faults: { latencyMs: 20 } });
      const single = await spawnSubgraph({ erpUrl: sim.url, mode: 'product', env: common });
      rows.push(await run('1 process, no Redis', [single], sim));
      await single.close();
      await sim.close();
    }
    {
      const sim = await startSimulator({ kickOlderSessions: true, faults: { latencyMs: 20 } });
      const env = { ...common, ZB_REDIS_URL: redis.url, ZB_FLEET_MAX_CONCURRENT_CALLS: String(FLEET_CAP) };
      const fleet = await Promise.all([0, 1, 2].map(() => spawnSubgraph({ erpUrl: sim.url, mode: 'product', env })));
      rows.push(await run(`3 replicas + Redis (fleet cap ${FLEET_CAP})`, fleet, sim));
      await Promise.all(fleet.map((r) => r.close()));
      await sim.close();
    }
  } finally {
    redis.child.kill('SIGKILL');
  }
  console.log(`\nFleet bench: ${CONNECTIONS} connections, ${SECONDS} s, list pages of 10 with details, ERP latency 20 ms, cache TTL 2 s\n`);
  console.log('| setup | req/s | operations | ERP calls / operation | logins | peak ERP concurrency | non-2xx/errors |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(`| ${r.setup} | ${r.rps} | ${r.operations} | ${(r.erpCalls / Math.max(1, r.operations)).toFixed(3)} | ${r.logins} | ${r.peak} | ${r.non2xx} |`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
