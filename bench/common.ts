import autocannon from 'autocannon';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/server/logger';
import { startApp, type App } from '../src/server/app';
import type { Simulator } from '../src/simulator/server';

/** Shared pieces of the benchmarks: an app on a simulator, one autocannon run, medians. */
export async function appOn(sim: Simulator, env: Record<string, string> = {}, naive = false): Promise<App> {
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', ZB_LOG_LEVEL: 'silent', ZB_MAX_COST: '100000', ...env });
  const app = await startApp({
    config,
    erpBaseUrl: sim.url,
    credentials: { user: 'admin', password: 'zb-sim-admin', serialnum: 'bench' },
    logger: createLogger('silent'),
    naiveDetailLoads: naive,
  });
  await app.stack.serviceSession!.login();
  return app;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

export async function load(url: string, body: unknown, connections: number, seconds: number, headers: Record<string, string> = {}): Promise<LoadResult> {
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    connections,
    duration: seconds,
  });
  return { requests: r.requests.total, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function rssMb(): number {
  return Math.round(process.memoryUsage().rss / 1048576);
}
