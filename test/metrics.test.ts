import { MAX_OPERATION_LABELS } from '../src/server/plugins';
import { startStack, until, type TestStack } from './helpers';

/** GET /metrics counts what happened: ERP calls and latency, coalesced calls, cache results, operations by name. */
let t: TestStack;
afterEach(() => t.close());

async function scrape(): Promise<string> {
  return (await fetch(t.app.url.replace('/graphql', '/metrics'))).text();
}

/** The value of one series, e.g. `zb_erp_coalesced_total{endpoint="list"}`; undefined when it was never written. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

it('counts ERP calls, their latency, coalesced reads and cache results', async () => {
  t = await startStack({ env: { ZB_CACHE_TTL_MS: '600000' } });
  t.sim.calls.clear();
  const LIST = 'query Recent { afterSaleServices(pageSize: 3) { items { id title } } }';
  // Hold the first list call in the simulator long enough for an identical one to find it in flight.
  t.sim.faults.configure({ latencyMs: 500 });
  const first = t.gql(LIST);
  await until(() => t.sim.calls.count('list') === 1, 'the first list call reached the simulator');
  const second = t.gql(LIST);
  await Promise.all([first, second]);
  t.sim.faults.configure({ latencyMs: 0 });
  await t.gql(LIST);
  expect(t.sim.calls.count('list')).toBe(1);

  const m = await scrape();
  expect(value(m, 'zb_erp_calls_total{endpoint="list",outcome="ok"}')).toBe(1);
  expect(value(m, 'zb_erp_call_duration_seconds_count{endpoint="list"}')).toBe(1);
  expect(value(m, 'zb_erp_coalesced_total{endpoint="list"}')).toBe(1);
  // Both concurrent reads missed the cache (one of them then joined the other's call); the third was a hit.
  expect(value(m, 'zb_erp_cache_total{endpoint="list",result="miss"}')).toBe(2);
  expect(value(m, 'zb_erp_cache_total{endpoint="list",result="hit"}')).toBe(1);
  expect(value(m, 'zb_graphql_request_duration_seconds_count{operation="Recent",status="ok"}')).toBe(3);
  expect(value(m, 'zb_erp_in_flight')).toBe(0);
  expect(value(m, 'zb_erp_queued')).toBe(0);
});

it('labels failed operations as errors', async () => {
  t = await startStack({ env: { ZB_RETRIES: '0' } });
  t.sim.faults.inject({ kind: 'http500', endpoint: 'list' });
  const r = await t.gql('query Broken { afterSaleServices(pageSize: 3) { items { id } } }');
  expect(r.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
  const m = await scrape();
  expect(value(m, 'zb_graphql_request_duration_seconds_count{operation="Broken",status="error"}')).toBe(1);
  expect(value(m, 'zb_erp_calls_total{endpoint="list",outcome="ERP_HTTP_STATUS"}')).toBe(1);
});

it(`keeps at most ${MAX_OPERATION_LABELS} operation names as labels; later names share "other"`, async () => {
  t = await startStack();
  for (let i = 0; i < MAX_OPERATION_LABELS + 5; i++) await t.gql(`query Op${i} { __typename }`);
  await t.gql('query Op0 { __typename }');
  const m = await scrape();
  const names = new Set([...m.matchAll(/zb_graphql_request_duration_seconds_count\{operation="([^"]+)"/g)].map((x) => x[1]));
  expect(names.size).toBe(MAX_OPERATION_LABELS + 1);
  expect(value(m, 'zb_graphql_request_duration_seconds_count{operation="other",status="ok"}')).toBe(5);
  // A name seen before the bound keeps its own series.
  expect(value(m, 'zb_graphql_request_duration_seconds_count{operation="Op0",status="ok"}')).toBe(2);
});
