import { Writable } from 'node:stream';
import { loadConfig } from '../src/config';
import type { Credentials } from '../src/erp/layers/session';
import { createLogger } from '../src/server/logger';
import { startApp, type App } from '../src/server/app';
import { startSimulator, type Simulator, type SimulatorOptions } from '../src/simulator/server';

export const SIM_USER = 'admin';
export const SIM_PASSWORD = 'zb-sim-admin';

/** Captures every log line of an app, so tests can look for what must never be logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

export interface TestStack {
  sim: Simulator;
  app: App;
  logs: LogCapture;
  gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GqlResponse<T>>;
  close(): Promise<void>;
}

export interface GqlResponse<T> {
  status: number;
  data: T | null | undefined;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** The simulator plus the subgraph over real HTTP on loopback ports, configured like production through env names. */
export async function startStack(
  options: { sim?: SimulatorOptions; env?: Record<string, string>; serviceAccount?: boolean; credentials?: Credentials } = {},
): Promise<TestStack> {
  const sim = await startSimulator({ user: SIM_USER, password: SIM_PASSWORD, ...options.sim });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', ZB_LOG_LEVEL: 'debug', ZB_RETRY_BASE_MS: '1', ZB_RETRY_MAX_MS: '5', ...options.env });
  const logs = new LogCapture();
  const app = await startApp({
    config,
    erpBaseUrl: sim.url,
    ...(options.serviceAccount === false ? {} : { credentials: options.credentials ?? { user: SIM_USER, password: SIM_PASSWORD, serialnum: 'test-suite' } }),
    logger: createLogger('debug', logs),
  });
  // Wait for the start-up login, so call logs begin clean.
  if (app.stack.serviceSession) await app.stack.serviceSession.login().catch(() => undefined);
  sim.calls.clear();
  return {
    sim,
    app,
    logs,
    async gql<T>(query: string, variables?: Record<string, unknown>, headers: Record<string, string> = {}) {
      const { status, json } = await postJson(app.url, { query, variables }, headers);
      const body = json as { data?: T | null; errors?: GqlResponse<T>['errors'] };
      return { status, data: body.data, ...(body.errors ? { errors: body.errors } : {}) };
    },
    async close() {
      await app.close();
      await sim.close();
    },
  };
}

/**
 * Resolves once `condition` holds, checking on every turn of the event loop: for states the simulator or the client
 * reach by themselves (a call arrived, a breaker half-opened). Waits on the state, not on time; the bound only turns a
 * condition that never comes into a failure instead of a spinning test.
 */
/**
 * `until` for a condition that must be awaited (a scrape, a store read): checked again `pauseMs` after each false
 * answer (0: on the next turn of the event loop), failing after `boundMs`.
 */
export async function eventually(condition: () => Promise<boolean>, what: string, boundMs = 5000, pauseMs = 0): Promise<void> {
  const give = Date.now() + boundMs;
  while (!(await condition())) {
    if (Date.now() > give) throw new Error(`never reached: ${what}`);
    await new Promise<void>((resolve) => (pauseMs > 0 ? setTimeout(resolve, pauseMs) : setImmediate(resolve)));
  }
}

export function until(condition: () => boolean, what: string, boundMs = 5000): Promise<void> {
  const give = Date.now() + boundMs;
  return new Promise<void>((resolve, reject) => {
    const poll = () => {
      if (condition()) resolve();
      else if (Date.now() > give) reject(new Error(`never reached: ${what}`));
      else setImmediate(poll);
    };
    poll();
  });
}
