import { join } from 'node:path';
import { Trace } from '@apollo/usage-reporting-protobuf';
import { postJson, startStack, type TestStack } from './helpers';

/**
 * Apollo federated tracing (`ftv1`): a gateway that reports usage asks each subgraph fetch for an inline trace with
 * `apollo-federation-include-trace: ftv1`, and gets it back base64-encoded in `extensions.ftv1`. Only such requests do
 * the tracing work: Apollo Server's own plugin, auto-installed on a subgraph schema, built a trace tree builder for
 * every request before looking at the header (server/inline-trace.ts).
 *
 * The builder is Apollo's TraceTreeBuilder, which the inline trace plugin takes from its module at each request: the
 * test counts its constructions there (the module by its file, the package's exports do not list it).
 */
type Builders = { TraceTreeBuilder: new (...args: never[]) => object };
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a file the package's exports do not list
const builders = require(join(process.cwd(), 'node_modules/@apollo/server/dist/cjs/plugin/traceTreeBuilder.js')) as Builders;
const Original = builders.TraceTreeBuilder;
let built = 0;
builders.TraceTreeBuilder = class Counted extends Original {
  constructor(...args: never[]) {
    super(...args);
    built++;
  }
};

// What a gateway sends to fetch entities for a query plan.
const ENTITIES = 'query($representations: [_Any!]!) { _entities(representations: $representations) { ... on AfterSaleService { id title content } } }';
const variables = { representations: [{ __typename: 'AfterSaleService', id: '1001' }, { __typename: 'AfterSaleService', id: '1002' }] };

type Reply = { data?: { _entities: Array<{ id: string; title: string }> }; errors?: unknown[]; extensions?: Record<string, unknown> };

let t: TestStack;
beforeAll(async () => {
  t = await startStack();
});
afterAll(async () => {
  await t.close();
  builders.TraceTreeBuilder = Original;
});
beforeEach(() => {
  built = 0;
});

it('a gateway that asks with apollo-federation-include-trace: ftv1 gets the trace of the fetch', async () => {
  const r = await postJson(t.app.url, { query: ENTITIES, variables }, { 'apollo-federation-include-trace': 'ftv1' });
  const body = r.json as Reply;
  expect(r.status).toBe(200);
  expect(body.errors).toBeUndefined();
  expect(body.data!._entities.map((e) => e.id)).toEqual(['1001', '1002']);
  expect(typeof body.extensions?.ftv1).toBe('string');
  const trace = Trace.decode(Buffer.from(body.extensions!.ftv1 as string, 'base64'));
  // The root's child is the fetched field, and under it one node per entity with its resolved fields.
  const entities = trace.root!.child!.find((n) => n.responseName === '_entities');
  expect(entities).toBeDefined();
  expect(entities!.child!.map((n) => n.index)).toEqual([0, 1]);
  expect(entities!.child![0]!.child!.map((n) => n.responseName).sort()).toEqual(['content', 'id', 'title']);
  expect(Number(trace.durationNs)).toBeGreaterThan(0);
  expect(built).toBe(1);
});

it('without the header: no ftv1 extension, and no trace tree is built at all', async () => {
  const plain = await postJson(t.app.url, { query: ENTITIES, variables });
  expect((plain.json as Reply).extensions?.ftv1).toBeUndefined();
  // Any other value is not a request for the trace either.
  const other = await postJson(t.app.url, { query: '{ afterSaleServices(pageSize: 2) { items { id title } } }' }, { 'apollo-federation-include-trace': 'ftv2' });
  expect((other.json as Reply).extensions?.ftv1).toBeUndefined();
  expect(built).toBe(0);
});
