import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import { loadConfig } from '../src/config';
import { startSimulator, type Simulator } from '../src/simulator/server';
import {
  classify,
  drive,
  erpFieldSelection,
  errorCodes,
  getText,
  killAllChildren,
  normalQuery,
  parseGql,
  request,
  RSS_BOUND_MB,
  SIM_PASSWORD,
  SIM_USER,
  socketErrors,
  startSubgraphChild,
  unexpected,
  type SubgraphChild,
  type Tally,
} from './support/attack';

/**
 * The abuse suite, memory side: each attack of the robustness issue replayed against the shipped entry point
 * (`dist/main.js` under `npm start`'s node flags, a child process of its own so its memory is its own), with the
 * simulator in this process as its ERP. After each attack the child must still be running, answer a normal query, and
 * have stayed under the documented RSS bound (its kernel high-water mark since start, VmHWM). A fresh child per test,
 * so one attack's damage cannot be blamed on another.
 */
const defaults = loadConfig({});
const MAX_ERP_CALLS = defaults.ZB_MAX_ERP_CALLS_PER_OPERATION;
const MAX_ITEMS = defaults.ZB_MAX_ITEMS_PER_OPERATION;
const MAX_PAGE = defaults.ZB_MAX_PAGE_SIZE;
const BODY_LIMIT = defaults.ZB_BODY_LIMIT_BYTES;
const ERP_FIELDS = erpFieldSelection();
const BUSY = '503:SERVER_BUSY';
const TOO_EXPENSIVE = '400:COST_ESTIMATED_TOO_EXPENSIVE';

let sim: Simulator;
const figures: string[] = [];

beforeAll(async () => {
  sim = await startSimulator({ user: SIM_USER, password: SIM_PASSWORD, sessionTimeoutMs: 0 });
});
afterAll(async () => {
  await killAllChildren();
  await sim?.close();
  // The measured figures, for the report (peak RSS per attack, outcome counts).
  if (figures.length) console.log(`abuse-memory figures (bound ${RSS_BOUND_MB} MB):\n  ${figures.join('\n  ')}`);
}, 20000);
beforeEach(() => {
  sim.faults.reset();
  sim.calls.clear();
});

/** A fresh child for one test, killed by pid whatever happens. */
async function withChild(env: Record<string, string>, body: (child: SubgraphChild) => Promise<void>): Promise<void> {
  const child = await startSubgraphChild(sim.url, env);
  try {
    await body(child);
  } finally {
    await child.kill();
  }
}

/** ERP calls other than logins (the child logs in at start, and again whenever its session lapses). */
function erpCalls(): number {
  return sim.calls.all().filter((c) => c.endpoint !== 'login').length;
}

function alive(child: SubgraphChild, after: string): void {
  if (child.exit()) throw new Error(`the subgraph died during: ${after}\n${child.describe()}`);
}

/** Notes the attack's figures at once, so a failing assertion after it still reports them. */
function record(child: SubgraphChild, label: string, tally?: Tally): void {
  const peak = child.peakRssMb();
  figures.push(`${label}: peak RSS ${peak ?? 'n/a'} MB${tally ? `; ${tally.requests} requests in ${(tally.elapsedMs / 1000).toFixed(1)} s: ${JSON.stringify(tally.outcomes)}` : ''}`);
}

/** The promise the fix makes after every attack: alive, a normal query answered, peak RSS under the bound. */
async function expectSurvived(child: SubgraphChild, label: string): Promise<void> {
  const peak = child.peakRssMb();
  alive(child, label);
  const normal = await normalQuery(child.base);
  expect({ status: normal.status, items: normal.items }).toEqual({ status: 200, items: 3 });
  expect(peak).toBeDefined();
  expect(peak!).toBeLessThan(RSS_BOUND_MB);
  alive(child, `${label} (after the normal query)`);
}

describe('Out of memory from distinct documents', () => {
  it('Out of memory from distinct documents: 1,500 distinct ~90 KB documents (half as APQ registrations), 8 at a time', async () => {
    await withChild({}, async (child) => {
      const pad = 'x'.repeat(90_000);
      let n = 0;
      const tally = await drive({
        base: child.base,
        clients: 8,
        total: 1500,
        durationMs: 60_000,
        stop: () => child.exit() !== undefined,
        body: () => {
          const i = n++;
          const query = `{ __typename } # document ${i} ${pad}`;
          // Every other one also registers an automatic persisted query, which Apollo keeps in a cache of its own.
          return i % 2
            ? JSON.stringify({ query, extensions: { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update(query).digest('hex') } } })
            : JSON.stringify({ query });
        },
      });
      record(child, 'distinct documents', tally);
      alive(child, 'distinct documents');
      expect(tally.requests).toBe(1500);
      expect(unexpected(tally, ['200:data'])).toEqual({});
      expect(erpCalls()).toBe(0);
      await expectSurvived(child, 'distinct documents');
    });
  }, 120_000);
});

describe('Out of memory from a metrics scrape', () => {
  it('Out of memory from a metrics scrape: 120 operations named with 95 KB each, then GET /metrics', async () => {
    // info level: the request log line names the operation, so a log field that is not capped shows here too.
    await withChild({ ZB_LOG_LEVEL: 'info' }, async (child) => {
      const longName = 'A'.repeat(95_000);
      const before = child.output.total;
      const tally = await drive({
        base: child.base,
        clients: 8,
        total: 120,
        durationMs: 60_000,
        stop: () => child.exit() !== undefined,
        body: (client, seq) => JSON.stringify({ query: `query Op${client}_${seq}_${longName} { __typename }` }),
      });
      record(child, 'long operation names', tally);
      alive(child, 'long operation names');
      expect(unexpected(tally, ['200:data'])).toEqual({});

      const scrape = await getText(`${child.base}/metrics`, 30_000);
      alive(child, 'the metrics scrape');
      expect(scrape.status).toBe(200);
      figures.push(`metrics scrape after long names: ${scrape.text.length} characters; child log output during the attack ${child.output.total - before} bytes, longest line ${child.output.longestLine}`);
      expect(scrape.text.length).toBeLessThan(1024 * 1024);
      const labelValues = [...scrape.text.matchAll(/\w+="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
      const operationLabels = [...scrape.text.matchAll(/operation="((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
      expect(operationLabels.length).toBeGreaterThan(0);
      expect(Math.max(...labelValues.map((v) => v.length))).toBeLessThanOrEqual(64);
      expect(operationLabels).toContain('other');
      // Log fields are capped: 120 log lines must not carry 120 x 95 KB of names.
      expect(child.output.total - before).toBeLessThan(1024 * 1024);
      expect(child.output.longestLine).toBeLessThan(8 * 1024);
      await expectSurvived(child, 'long operation names + scrape');
    });
  }, 120_000);
});

describe('One request crashes it', () => {
  const aliases = Array.from({ length: 30 }, (_, i) => `e${i}: _entities(representations: $r) { ... on AfterSaleService { id title content } }`).join(' ');
  const BOMB = `query Bomb($r: [_Any!]!) { ${aliases} }`;

  it('One request crashes it: 30 aliased _entities fields over the same 2,000 representations is refused before any ERP call', async () => {
    await withChild({}, async (child) => {
      const reps = Array.from({ length: 2000 }, (_, i) => ({ __typename: 'AfterSaleService', id: 1001 + (i % 300) }));
      const body = JSON.stringify({ query: BOMB, variables: { r: reps } });
      expect(body.length).toBeLessThan(BODY_LIMIT);
      const outputBefore = child.output.total;
      const pool = new Pool(child.base, { connections: 1 });
      const r = await request(pool, { method: 'POST', path: '/graphql', body, timeoutMs: 60_000 })
        .catch((e: unknown) => {
          throw new Error(`no answer to the aliased _entities request (${String(e)})\n${child.describe()}`);
        })
        .finally(() => pool.destroy());
      const erpCallsMade = erpCalls();
      record(child, 'aliased _entities bomb');
      alive(child, 'the aliased _entities request');
      const parsed = parseGql(r.text);
      figures.push(`aliased _entities bomb (${body.length} bytes): ${classify(r)}, ${erpCallsMade} ERP calls, ${r.text.length} response bytes, ${child.output.total - outputBefore} bytes of child output`);
      expect(classify(r)).toBe(TOO_EXPENSIVE);
      expect(parsed?.data ?? null).toBeNull();
      expect(erpCallsMade).toBe(0);
      // Measured after a later request, so anything the bomb logged is in.
      await expectSurvived(child, 'aliased _entities bomb');
      const logged = child.output.total - outputBefore;
      expect(logged).toBeLessThan(16 * 1024);
    });
  }, 90_000);

  it('One request crashes it: malformed representations within the bound are BAD_USER_INPUT, never INTERNAL_SERVER_ERROR, with no stack logged', async () => {
    await withChild({}, async (child) => {
      const one = 'query One($r: [_Any!]!) { _entities(representations: $r) { ... on AfterSaleService { id title } } }';
      const cases: Array<[string, unknown[], 'BAD_USER_INPUT' | 'no INTERNAL_SERVER_ERROR']> = [
        ['an id that is an object', Array.from({ length: 10 }, (_, i) => ({ __typename: 'AfterSaleService', id: { n: 1001 + i } })), 'BAD_USER_INPUT'],
        ['an unknown __typename', Array.from({ length: 10 }, (_, i) => ({ __typename: 'NoSuchType', id: String(1001 + i) })), 'BAD_USER_INPUT'],
        ['no __typename', Array.from({ length: 10 }, (_, i) => ({ id: String(1001 + i) })), 'BAD_USER_INPUT'],
        ['not an object', Array.from({ length: 10 }, (_, i) => 1001 + i), 'BAD_USER_INPUT'],
        // Numeric ids are what gateways built on some stacks send; they must never be an internal error.
        ['numeric ids', Array.from({ length: 10 }, (_, i) => ({ __typename: 'AfterSaleService', id: 1001 + i })), 'no INTERNAL_SERVER_ERROR'],
      ];
      const seen: Record<string, string> = {};
      const outputBefore = child.output.total;
      for (const [name, reps, expectation] of cases) {
        sim.calls.clear();
        const res = await fetch(`${child.base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: one, variables: { r: reps } }),
          signal: AbortSignal.timeout(15_000),
        });
        const body = parseGql(await res.text());
        const codes = errorCodes(body);
        const made = erpCalls();
        seen[name] = `${res.status} ${codes.join(',') || 'no errors'}; ${made} ERP calls`;
        if (expectation === 'BAD_USER_INPUT') {
          expect({ name, codes, erpCalls: made }).toEqual({ name, codes: ['BAD_USER_INPUT'], erpCalls: 0 });
        } else {
          expect({ name, codes: codes.filter((c) => c !== 'BAD_USER_INPUT') }).toEqual({ name, codes: [] });
        }
      }
      record(child, 'malformed representations');
      figures.push(`malformed representations: ${JSON.stringify(seen)}`);
      await expectSurvived(child, 'malformed representations');
      expect(child.output.tail(Math.min(child.output.total - outputBefore, 64 * 1024))).not.toMatch(/"stack"|\n\s+at /);
      expect(child.output.total - outputBefore).toBeLessThan(16 * 1024);
    });
  }, 60_000);
});

describe('Legal queries crash it below the shedding bound', () => {
  const detailShape = (pageSize: number, page = 1) =>
    `{ afterSaleServices(pageSize: ${pageSize}, page: ${page}) { items { id title content handlingContent remark erpFields { ${ERP_FIELDS} } } } }`;
  const LIST_FIELDS = 'id code title customerName productName assignee acceptedAt createdBy fee category { id name } urgency { id name } result { id name }';
  const SORTS = ['ID', 'CODE', 'TITLE', 'ACCEPTED_AT'];
  /** `count` list pages of `pageSize`, each a distinct ERP call (page x sort), so nothing is coalesced away. */
  const listOnlyAliases = (count: number, pageSize: number) =>
    `{ ${Array.from({ length: count }, (_, i) => `a${i}: afterSaleServices(pageSize: ${pageSize}, page: ${1 + (i % 3)}, sort: { field: ${SORTS[Math.floor(i / 3) % SORTS.length]}, direction: DESC }) { items { ${LIST_FIELDS} } }`).join(' ')} }`;
  const detailAliases = (count: number, pageSize: number) =>
    `{ ${Array.from({ length: count }, (_, i) => `a${i}: afterSaleServices(pageSize: ${pageSize}, page: ${1 + (i % 4)}) { items { content handlingContent erpFields { ${ERP_FIELDS} } } }`).join(' ')} }`;

  /** 100 clients (or `clients`) looping one shape against a child at 20 ms ERP latency. */
  async function hammer(child: SubgraphChild, clients: number, seconds: number, body: (client: number, seq: number) => string): Promise<Tally> {
    sim.faults.configure({ latencyMs: 20 });
    try {
      return await drive({ base: child.base, clients, durationMs: seconds * 1000, timeoutMs: 40_000, stop: () => child.exit() !== undefined, body });
    } finally {
      sim.faults.configure({ latencyMs: 0 });
    }
  }

  /** Only the outcomes the fix allows, no socket errors, no masked internal errors. */
  function expectOnly(tally: Tally, allowed: string[]): void {
    expect(socketErrors(tally)).toBe(0);
    expect(unexpected(tally, allowed)).toEqual({});
  }

  it(`Legal queries crash it below the shedding bound: 100 clients of pageSize ${MAX_PAGE} with detail fields are refused by cost`, async () => {
    await withChild({}, async (child) => {
      const query = JSON.stringify({ query: detailShape(MAX_PAGE) });
      const tally = await hammer(child, 100, 8, () => query);
      record(child, `100 clients, pageSize ${MAX_PAGE} + details (refused shape)`, tally);
      alive(child, 'pageSize 100 with detail fields');
      expectOnly(tally, [TOO_EXPENSIVE, BUSY]);
      expect(tally.outcomes[TOO_EXPENSIVE] ?? 0).toBeGreaterThan(0);
      // Refused before execution: the ERP saw none of it (the normal query below comes after this count).
      expect(erpCalls()).toBe(0);
      await expectSurvived(child, `100 clients, pageSize ${MAX_PAGE} + details (refused shape)`);
    });
  }, 90_000);

  it(`Legal queries crash it below the shedding bound: 100 clients of the worst admitted detail shape (pageSize ${MAX_ERP_CALLS - 1}, ${MAX_ERP_CALLS} ERP calls)`, async () => {
    await withChild({}, async (child) => {
      const pageSize = MAX_ERP_CALLS - 1;
      // Pages differ per client, so coalescing does not share the ERP work away.
      const bodies = Array.from({ length: 6 }, (_, p) => JSON.stringify({ query: detailShape(pageSize, p + 1) }));
      const tally = await hammer(child, 100, 15, (client) => bodies[client % bodies.length]!);
      record(child, `100 clients, pageSize ${pageSize} + details (admitted)`, tally);
      alive(child, 'worst admitted detail shape');
      const admittedWithData = Object.keys(tally.outcomes).filter((k) => k.startsWith('200:data') && !k.includes('INTERNAL_SERVER_ERROR'));
      expectOnly(tally, [...admittedWithData, BUSY]);
      expect(tally.outcomes['200:data'] ?? 0).toBeGreaterThan(0);
      await expectSurvived(child, `100 clients, pageSize ${pageSize} + details (admitted)`);
    });
  }, 90_000);

  it(`Legal queries crash it below the shedding bound: 100 clients of the largest admitted list-only shape (${MAX_ITEMS / MAX_PAGE} aliases x pageSize ${MAX_PAGE})`, async () => {
    await withChild({}, async (child) => {
      const query = JSON.stringify({ query: listOnlyAliases(Math.floor(MAX_ITEMS / MAX_PAGE), MAX_PAGE) });
      const tally = await hammer(child, 100, 10, () => query);
      record(child, `100 clients, ${MAX_ITEMS / MAX_PAGE} x ${MAX_PAGE} list-only (admitted)`, tally);
      alive(child, 'largest admitted list-only shape');
      const admittedWithData = Object.keys(tally.outcomes).filter((k) => k.startsWith('200:data') && !k.includes('INTERNAL_SERVER_ERROR'));
      expectOnly(tally, [...admittedWithData, BUSY]);
      expect(tally.outcomes['200:data'] ?? 0).toBeGreaterThan(0);
      await expectSurvived(child, `100 clients, ${MAX_ITEMS / MAX_PAGE} x ${MAX_PAGE} list-only (admitted)`);
    });
  }, 90_000);

  it('Legal queries crash it below the shedding bound: 5 clients of 30 aliased pages of 100 are refused by cost', async () => {
    await withChild({}, async (child) => {
      // Alternately 30 pages with detail fields (ERP calls) and 30 list-only pages (items): both over a bound.
      const bodies = [JSON.stringify({ query: detailAliases(30, MAX_PAGE) }), JSON.stringify({ query: listOnlyAliases(30, MAX_PAGE) })];
      const tally = await hammer(child, 5, 6, (_client, seq) => bodies[seq % 2]!);
      record(child, '5 clients, 30 aliased pages of 100 (refused)', tally);
      alive(child, '30 aliased pages of 100');
      expectOnly(tally, [TOO_EXPENSIVE, BUSY]);
      expect(tally.outcomes[TOO_EXPENSIVE] ?? 0).toBeGreaterThan(0);
      expect(erpCalls()).toBe(0);
      await expectSurvived(child, '5 clients, 30 aliased pages of 100 (refused)');
    });
  }, 90_000);
});
