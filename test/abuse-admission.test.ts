import net from 'node:net';
import { parse, type OperationDefinitionNode } from 'graphql';
import { estimateOperation } from '../src/graphql/cost';
import { DEFAULT_FIELD_MAP } from '../src/domain/field-map';
import { documentBytes, documentCache } from '../src/server/document-cache';
import { operationLabeler } from '../src/server/plugins';
import { loadConfig } from '../src/config';
import { startApp } from '../src/server/app';
import { createLogger } from '../src/server/logger';
import { startSimulator } from '../src/simulator/server';
import { postJson, SIM_PASSWORD, SIM_USER, startStack, until, type TestStack } from './helpers';

/**
 * The abuse suite, in process: admission by cost before any ERP call, malformed federation input, per-request fan-out,
 * identity edge cases, slots taken after the body, readiness that never waits. Memory under attack is proven on the
 * shipped process in abuse-memory.test.ts.
 */
let t: TestStack;
beforeAll(async () => {
  t = await startStack({ env: { NODE_ENV: 'production', ZB_SESSION_HEADER_REQUIRED: 'false' } });
});
afterAll(() => t.close());
beforeEach(() => {
  t.sim.calls.clear();
  t.sim.faults.reset();
});

const rules = { onListRow: (f: string) => f in DEFAULT_FIELD_MAP.list, defaultPageSize: 20 };
const estimate = (query: string, variables: Record<string, unknown> = {}) => {
  const doc = parse(query);
  const op = doc.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')!;
  return estimateOperation(doc, op, variables, rules);
};

describe('demand control: the estimate is the ERP calls the operation makes', () => {
  it.each<[string, string, Record<string, unknown>]>([
    ['list columns only', '{ afterSaleServices(pageSize: 7) { items { id title urgency { name } acceptedAt } } }', {}],
    ['list + a detail field', '{ afterSaleServices(pageSize: 7) { items { id content } } }', {}],
    ['two aliased pages with details', 'query($n: Int) { a: afterSaleServices(pageSize: $n) { items { content } } b: afterSaleServices(page: 2, pageSize: $n) { items { erpFields { key } } } }', { n: 5 }],
    ['fragments and inline fragments', 'query { afterSaleServices(pageSize: 4) { ...P } } fragment P on AfterSaleServicePage { items { ... on AfterSaleService { phone } } }', {}],
    ['one by id', '{ afterSaleService(id: "1001") { id title content } }', {}],
    ['entities', 'query($r: [_Any!]!) { _entities(representations: $r) { ... on AfterSaleService { title } ... on Customer { afterSaleServices(pageSize: 3) { items { id content } } } } }',
      { r: [{ __typename: 'AfterSaleService', id: '1001' }, { __typename: 'AfterSaleService', id: '1002' }, { __typename: 'Customer', id: '501' }] }],
    ['nothing from the ERP', '{ __typename _service { sdl } }', {}],
  ])('%s', async (_name, query, variables) => {
    const expected = estimate(query, variables);
    const r = await t.gql(query, variables);
    expect(r.errors).toBeUndefined();
    expect(t.sim.calls.count()).toBe(expected.erpCalls);
  });

  it('pageSize 100 with a detail field (101 calls) is refused before any ERP call; pageSize 40 (41 calls) runs', async () => {
    const refused = await t.gql('{ afterSaleServices(pageSize: 100) { items { content handlingContent erpFields { key } } } }');
    expect(refused.status).toBe(400);
    expect(refused.errors?.[0]?.extensions).toEqual(expect.objectContaining({
      code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: { what: 'ERP calls', estimate: 101, limit: 50 },
    }));
    expect(t.sim.calls.count()).toBe(0);
    const admitted = await t.gql('{ afterSaleServices(pageSize: 40) { items { content } } }');
    expect(admitted.errors).toBeUndefined();
  });

  it('one document, estimated per request when its variables count: $n 5 runs, $n 100 is refused, $n 5 runs again', async () => {
    // The server keeps an operation's estimate while its document is stored, but only when no variable was read.
    const query = 'query($n: Int) { afterSaleServices(pageSize: $n) { items { content } } }';
    const small = await t.gql(query, { n: 5 });
    expect(small.errors).toBeUndefined();
    expect(t.sim.calls.count('detail')).toBe(5);
    t.sim.calls.clear();
    const refused = await t.gql(query, { n: 100 });
    expect(refused.status).toBe(400);
    expect(refused.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: { what: 'ERP calls', estimate: 101, limit: 50 } }));
    expect(t.sim.calls.count()).toBe(0);
    expect((await t.gql(query, { n: 5 })).errors).toBeUndefined();
    t.sim.calls.clear();
    // A document whose estimate reads no variable is refused the same way every time it comes.
    const fixed = 'query($page: Int) { afterSaleServices(page: $page, pageSize: 100) { items { content } } }';
    for (const page of [1, 2]) expect((await t.gql(fixed, { page })).errors?.[0]?.extensions?.code).toBe('COST_ESTIMATED_TOO_EXPENSIVE');
    expect(t.sim.calls.count()).toBe(0);
  });

  it('aliased pages count: 30 x pageSize 100 list-only is refused on items (3,000 > 1,000)', async () => {
    const pages = Array.from({ length: 30 }, (_, i) => `p${i}: afterSaleServices(page: ${i + 1}, pageSize: 100) { items { id title } }`).join(' ');
    const r = await t.gql(`{ ${pages} }`);
    expect(r.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: { what: 'items', estimate: 3000, limit: 1000 } }));
    expect(t.sim.calls.count()).toBe(0);
  });
});

describe('_entities input', () => {
  const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on AfterSaleService { id title } ... on Customer { afterSaleServices(pageSize: 1) { items { id } } } } }';

  it('30 aliased _entities over the same 2,000 representations: refused as a whole, no ERP call, small log', async () => {
    const reps = Array.from({ length: 2000 }, (_, i) => ({ __typename: 'AfterSaleService', id: 1001 + (i % 50) }));
    const fields = Array.from({ length: 30 }, (_, i) => `e${i}: _entities(representations: $r) { ... on AfterSaleService { id } }`).join(' ');
    const before = t.logs.text.length;
    const r = await t.gql(`query($r: [_Any!]!) { ${fields} }`, { r: reps });
    expect(r.status).toBe(400);
    expect(r.errors).toHaveLength(1);
    expect(r.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: { what: 'representations', estimate: 60000, limit: 100 } }));
    expect(t.sim.calls.count()).toBe(0);
    expect(t.logs.text.length - before).toBeLessThan(4000);
  });

  it('numeric ids are accepted as their text', async () => {
    const r = await t.gql<{ _entities: Array<{ id: string }> }>(ENTITIES, { r: [{ __typename: 'AfterSaleService', id: 1001 }] });
    expect(r.errors).toBeUndefined();
    expect(r.data!._entities[0]!.id).toBe('1001');
  });

  it.each<[string, unknown]>([
    ['unknown __typename', { __typename: 'Invoice', id: '1' }],
    ['missing __typename', { id: '1001' }],
    ['object id', { __typename: 'AfterSaleService', id: { $gt: 1 } }],
    ['not an object', 'AfterSaleService:1001'],
  ])('malformed representation (%s) is BAD_USER_INPUT, no ERP call, no stack in the log', async (_name, rep) => {
    const before = t.logs.lines.length;
    const r = await t.gql(ENTITIES, { r: [{ __typename: 'AfterSaleService', id: '1001' }, rep] });
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'BAD_USER_INPUT', index: 1 }));
    expect(t.sim.calls.count()).toBe(0);
    const newLines = t.logs.lines.slice(before).join('\n');
    expect(newLines).not.toMatch(/"stack"|unexpected error/);
  });

  it('one request with 40 Customer representations takes at most ZB_DETAIL_CONCURRENCY ERP slots; another client is served meanwhile', async () => {
    t.sim.faults.configure({ latencyMs: 30 });
    const reps = Array.from({ length: 40 }, (_, i) => ({ __typename: 'Customer', id: String(501 + i) }));
    const heavy = t.gql(ENTITIES, { r: reps });
    await until(() => t.sim.calls.count('list') >= 8, 'the heavy request reached the ERP');
    const light = await t.gql('{ afterSaleService(id: "1001") { title } }');
    expect(light.errors).toBeUndefined();
    // The light request's detail call was served while the heavy one still had list calls to make.
    const done = await heavy;
    expect(done.errors).toBeUndefined();
    const calls = t.sim.calls.all();
    const detailSeq = calls.find((c) => c.endpoint === 'detail')!.seq;
    expect(calls.filter((c) => c.endpoint === 'list' && c.seq > detailSeq).length).toBeGreaterThan(0);
    expect(t.sim.calls.peak('list')).toBeLessThanOrEqual(8);
  });
});

describe('identity', () => {
  it('a blank x-zb-session is UNAUTHENTICATED (401), never the service account', async () => {
    const r = await t.gql('{ afterSaleServices { items { id } } }', {}, { 'x-zb-session': '   ' });
    expect(r.status).toBe(401);
    expect(r.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(t.sim.calls.count()).toBe(0);
  });

  it('without a header where one is required, only operations that need the ERP are refused', async () => {
    const s = await startStack({ env: { ZB_SESSION_HEADER_REQUIRED: 'true' } });
    try {
      const sdl = await s.gql<{ _service: { sdl: string }; __typename: string }>('{ __typename _service { sdl } }');
      expect(sdl.errors).toBeUndefined();
      expect(sdl.data!._service.sdl).toContain('type AfterSaleService');
      const list = await s.gql('{ afterSaleServices { items { id } } }');
      expect(list.status).toBe(401);
      expect(s.sim.calls.count()).toBe(0);
    } finally {
      await s.close();
    }
  });
});

describe('admission budget and slots', () => {
  it('operations beyond ZB_INFLIGHT_BUDGET_BYTES get 503 SERVER_BUSY with Retry-After while the first is held', async () => {
    const s = await startStack({ env: { ZB_INFLIGHT_BUDGET_BYTES: String(1024 * 1024) } });
    try {
      s.sim.faults.configure({ latencyMs: 300 });
      // 41 calls x 24 KB + 40 items x 5 KB + 64 KB is about 1.2 MB: one such operation fills the 1 MB budget.
      const heavy = '{ afterSaleServices(pageSize: 40) { items { content } } }';
      const first = s.gql(heavy);
      await until(() => s.sim.calls.count('list') === 1, 'the first operation is executing');
      const second = await postJson(s.app.url, { query: heavy });
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).toBe('1');
      expect((second.json as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('SERVER_BUSY');
      expect((await first).errors).toBeUndefined();
      // The budget is given back: the same operation runs now.
      s.sim.faults.configure({ latencyMs: 0 });
      expect((await s.gql(heavy)).errors).toBeUndefined();
    } finally {
      await s.close();
    }
  });

  it('a request still sending its body holds no slot (slots are taken after the body), and times out with 408', async () => {
    const s = await startStack({ env: { ZB_MAX_INFLIGHT_REQUESTS: '1', ZB_BODY_TIMEOUT_MS: '300' } });
    const socket = net.connect(s.app.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('utf8')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write('POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"query":');
      const normal = await s.gql('{ afterSaleServices(pageSize: 1) { items { id } } }');
      expect(normal.status).toBe(200);
      await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      socket.destroy();
      await s.close();
    }
  });

  it('/health/ready answers at once (503, logging in) while the initial login is stalled', async () => {
    const sim = await startSimulator({ user: SIM_USER, password: SIM_PASSWORD });
    sim.faults.inject({ kind: 'stall', endpoint: 'login' });
    const app = await startApp({
      config: loadConfig({ PORT: '0', HOST: '127.0.0.1', ZB_TIMEOUT_MS: '3000' }),
      erpBaseUrl: sim.url,
      credentials: { user: SIM_USER, password: SIM_PASSWORD, serialnum: 'stalled' },
      logger: createLogger('silent'),
    });
    try {
      await until(() => sim.calls.count('login') === 1, 'the initial login reached the ERP');
      const started = Date.now();
      const ready = await fetch(app.url.replace('/graphql', '/health/ready'));
      expect(Date.now() - started).toBeLessThan(500);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual(expect.objectContaining({ status: 'unavailable', erp: 'logging in' }));
      // The probe itself started no second login.
      expect(sim.calls.count('login')).toBe(1);
    } finally {
      await app.close();
      await sim.close();
    }
  });
});

describe('retained bytes', () => {
  it('the document cache is bounded by source bytes: 500 distinct 90 KB comment-padded documents stay under the bound', async () => {
    const cache = documentCache(4 * 1024 * 1024);
    for (let i = 0; i < 500; i++) {
      const doc = parse(`{ __typename } # ${String(i).padEnd(90_000, 'x')}`);
      expect(documentBytes(doc)).toBeGreaterThan(180_000);
      await cache.set(`k${i}`, doc);
    }
    expect(cache.bytes).toBeLessThanOrEqual(4 * 1024 * 1024);
  });

  it('a response carries at most 100 errors, the rest summed up in the last one', async () => {
    const s = await startStack({ env: { ZB_RETRIES: '0' } });
    try {
      s.sim.faults.inject({ kind: 'http500', endpoint: 'detail', times: 1000 });
      const r = await s.gql('{ afterSaleServices(pageSize: 40) { items { content remark phone } } }');
      expect(r.errors).toHaveLength(100);
      expect(r.errors?.[99]?.extensions).toEqual(expect.objectContaining({ omitted: 40 * 3 - 99 }));
    } finally {
      await s.close();
    }
  });

  it('operation-name labels are capped in number and length', () => {
    const label = operationLabeler(3, 64);
    expect(label('A'.repeat(95_000))).toBe('other');
    expect(label('Short')).toBe('Short');
    expect(['B', 'C', 'D'].map(label)).toEqual(['B', 'C', 'other']);
  });

  it('a 95 KB operation name reaches neither /metrics nor the log whole', async () => {
    const name = `Q${'x'.repeat(95_000)}`;
    const r = await t.gql(`query ${name} { __typename }`);
    expect(r.errors).toBeUndefined();
    const metrics = await (await fetch(t.app.url.replace('/graphql', '/metrics'))).text();
    expect(metrics).not.toContain('x'.repeat(100));
    expect(t.logs.text).not.toContain('x'.repeat(1000));
  });
});
