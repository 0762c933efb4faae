import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server';
import { killAllChildren, parseGql, startSubgraphChild, type GqlBody, type SubgraphChild } from './attack';
import { startRedis, type RedisInstance } from './redis-server';

/**
 * A fleet for the fleet suites: one real redis-server, one in-process simulator (its call log is the evidence), and
 * replicas of the shipped `dist/main.js`, each its own process sharing the Redis. `stop()` kills everything by pid.
 */
export interface FleetUnderTest {
  redis: RedisInstance;
  sim: Simulator;
  replicas: SubgraphChild[];
  stop(): Promise<void>;
}

/** `answered`: when a replica counts as started, by its /health/ready status (default 200: it holds an ERP session). */
export async function startFleet(options: {
  replicas: number;
  env?: Record<string, string>;
  simulator?: SimulatorOptions;
  answered?: (status: number) => boolean;
}): Promise<FleetUnderTest> {
  const redis = await startRedis();
  const sim = await startSimulator({ kickOlderSessions: true, ...options.simulator });
  const stop = async () => {
    await killAllChildren();
    await sim.close();
    await redis.stop();
  };
  try {
    const env = {
      ZB_REDIS_URL: redis.url,
      ZB_TIMEOUT_MS: '2000',
      ZB_RETRIES: '1',
      ZB_LOG_LEVEL: 'warn',
      ...options.env,
    };
    const replicas = await Promise.all(Array.from({ length: options.replicas }, () => startSubgraphChild(sim.url, env, 30000, options.answered)));
    return { redis, sim, replicas, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export async function gql(base: string, query: string, variables?: Record<string, unknown>, timeoutMs = 15_000): Promise<{ status: number; body: GqlBody | undefined; ms: number }> {
  const started = Date.now();
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, ...(variables ? { variables } : {}) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: parseGql(await res.text()), ms: Date.now() - started };
}

export const HANDLE = `mutation H($input: HandleServiceInput!) {
  handleService(input: $input) { outcome message userErrors { field code message } service { id handlingContent handlingResult } }
}`;

export type HandlePayload = { outcome: string; message: string | null; service: { handlingContent: string | null } | null };

export function handled(body: GqlBody | undefined): HandlePayload | undefined {
  return (body?.data as { handleService?: HandlePayload } | null | undefined)?.handleService ?? undefined;
}

export const DETAIL = (id: string) => `{ afterSaleService(id: "${id}") { id handlingContent handlingResult } }`;

/**
 * Saves the ERP stored, per the simulator's call log (a save refused for a kicked session is sent again after the
 * relogin, as the ERP checks the session before it acts: only the stored one counts).
 */
export function saves(sim: Simulator, ord?: string): number {
  return sim.calls.of('process').filter((c) => c.stored && (ord === undefined || c.datas.ord === ord)).length;
}
