import { startSimulator } from './server';
import { DEFAULT_SIMULATOR_PASSWORD, DEFAULT_SIMULATOR_USER } from './users';

/** `npm run simulator`: the simulated ERP on its own, for other tools (and the benchmarks) to call. */
function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`${name} must be a non-negative number, got '${raw}'`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  const sim = await startSimulator({
    port: numberEnv('SIMULATOR_PORT', 4090),
    host: process.env.SIMULATOR_HOST || '127.0.0.1',
    user: process.env.SIMULATOR_USER || DEFAULT_SIMULATOR_USER,
    password: process.env.SIMULATOR_PASSWORD || DEFAULT_SIMULATOR_PASSWORD,
    sessionTimeoutMs: numberEnv('SIMULATOR_SESSION_TIMEOUT_MS', 20 * 60000),
    faults: {
      latencyMs: numberEnv('SIMULATOR_LATENCY_MS', 0),
      maxConcurrent: numberEnv('SIMULATOR_MAX_CONCURRENT', 0),
      errorRate: numberEnv('SIMULATOR_ERROR_RATE', 0),
    },
    adminApi: true,
  });
  console.log(`ZBIntel ERP simulator listening on ${sim.url} (user '${process.env.SIMULATOR_USER || DEFAULT_SIMULATOR_USER}')`);
  const stop = () => {
    void sim.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void main();
