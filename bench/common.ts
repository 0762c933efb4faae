import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import type { CallLog } from '../src/simulator/call-log';

/** Shared pieces of the benchmarks: one autocannon run, medians, what the rest of the machine was doing. */
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

/**
 * Like `load`, with a body of its own for every request: `bodyOf(n)` for the n-th request sent (0, 1, 2, ...).
 * `onResponse` sees each response's status as it arrives (for measurements over a window of the run).
 */
export async function loadEach(
  url: string,
  bodyOf: (n: number) => unknown,
  connections: number,
  seconds: number,
  onResponse: (status: number) => void = () => undefined,
): Promise<LoadResult> {
  let n = 0;
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        connections,
        duration: seconds,
        requests: [{ setupRequest: (req) => ({ ...req, body: JSON.stringify(bodyOf(n++)) }) }],
      },
      (err, result) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(result)),
    );
    instance.on('response', (_client, status) => onResponse(status));
  });
  return { requests: r.requests.total, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The machine's CPU counters (/proc/stat, all cores): busy and total time in clock ticks; undefined without /proc. */
export function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    // idle and iowait are the only non-busy columns
    return { busy: total - cpu[3]! - cpu[4]!, total };
  } catch {
    return undefined;
  }
}

/**
 * Resolves once the simulated ERP has had nothing in flight for 3 checks 50 ms apart: the operations a load run left
 * behind (a server may finish them after the load tool hung up) do not run into the next run. Clears the call log.
 */
export async function erpIdle(calls: CallLog): Promise<void> {
  for (let quiet = 0; quiet < 3; ) {
    calls.clear(); // from here, peak() is the most calls in flight since now
    await new Promise((resolve) => setTimeout(resolve, 50));
    quiet = calls.peak() === 0 && calls.count() === 0 ? quiet + 1 : 0;
  }
}
