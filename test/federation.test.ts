import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { composeServices } from '@apollo/composition';
import { composeServices as guildCompose } from '@theguild/federation-composition';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';
import { checkSchema, readRecord } from '../scripts/print-schema';
import { startStack, postJson, type TestStack } from './helpers';

/**
 * A real supergraph in-process: this subgraph's own `_service { sdl }` composed with a small customers subgraph,
 * executed by @apollo/gateway over real HTTP to both.
 */
const CUSTOMERS_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
  type Query { customer(id: ID!): Customer }
  type Customer @key(fields: "id") { id: ID! name: String! }
`;

let t: TestStack;
let customers: { url: string; close(): Promise<void> };
let gateway: ApolloServer;
let gatewayUrl: string;
let gatewayHttp: http.Server;

async function serve(server: ApolloServer): Promise<{ url: string; httpServer: http.Server }> {
  await server.start();
  const httpServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Map<string, string>();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const hm = new HeaderMap();
      for (const [k, v] of headers) hm.set(k, v);
      server
        .executeHTTPGraphQLRequest({ httpGraphQLRequest: { method: req.method ?? 'POST', headers: hm, search: '', body: JSON.parse(Buffer.concat(chunks).toString() || '{}') }, context: async () => ({}) })
        .then((r) => {
          for (const [k, v] of r.headers) res.setHeader(k, v);
          res.statusCode = r.status ?? 200;
          res.end(r.body.kind === 'complete' ? r.body.string : '');
        })
        .catch((e: unknown) => {
          res.statusCode = 500;
          res.end(String(e));
        });
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}/graphql`, httpServer };
}

let ourSdl: string;

beforeAll(async () => {
  t = await startStack();
  const names: Record<string, string> = Object.fromEntries(t.sim.world.data.customers.map((c) => [String(c.id), c.name]));
  const customerServer = new ApolloServer({
    plugins: [ApolloServerPluginInlineTraceDisabled()],
    schema: buildSubgraphSchema([{
      typeDefs: parse(CUSTOMERS_SDL),
      resolvers: {
        Query: { customer: (_: unknown, { id }: { id: string }) => (names[id] ? { id, name: names[id] } : null) },
        Customer: { __resolveReference: (ref: { id: string }) => ({ id: ref.id, name: names[ref.id] ?? 'unknown' }) },
      },
    }]),
  });
  const served = await serve(customerServer);
  customers = { url: served.url, close: async () => { await customerServer.stop(); served.httpServer.close(); } };

  const sdlReply = await postJson(t.app.url, { query: '{ _service { sdl } }' });
  ourSdl = (sdlReply.json as { data: { _service: { sdl: string } } }).data._service.sdl;
  const composition = composeServices([
    { name: 'aftersale', url: t.app.url, typeDefs: parse(ourSdl) },
    { name: 'customers', url: customers.url, typeDefs: parse(CUSTOMERS_SDL) },
  ]);
  if (composition.errors) throw new Error(composition.errors.map((e) => e.message).join('\n'));
  gateway = new ApolloServer({
    gateway: new ApolloGateway({ supergraphSdl: composition.supergraphSdl, buildService: ({ url }) => new RemoteGraphQLDataSource({ url: url! }) }),
  });
  const g = await serve(gateway);
  gatewayUrl = g.url;
  gatewayHttp = g.httpServer;
});

afterAll(async () => {
  await gateway.stop();
  gatewayHttp.close();
  await customers.close();
  await t.close();
});

beforeEach(() => t.sim.calls.clear());

it('composes with The Guild composition too', () => {
  const result = guildCompose([
    { name: 'aftersale', url: t.app.url, typeDefs: parse(ourSdl) },
    { name: 'customers', url: customers.url, typeDefs: parse(CUSTOMERS_SDL) },
  ]);
  expect(result.errors ?? []).toEqual([]);
});

it('customer(id) { name afterSaleServices { items { title content } } } crosses both subgraphs', async () => {
  const r = await postJson(gatewayUrl, { query: '{ customer(id: "505") { name afterSaleServices(pageSize: 5) { pageInfo { totalCount } items { title content } } } }' });
  const data = (r.json as { data: { customer: { name: string; afterSaleServices: { pageInfo: { totalCount: number }; items: Array<{ title: string; content: string }> } } } }).data;
  expect(data.customer.name).toBe(t.sim.world.customer(505)!.name);
  const own = t.sim.world.liveServices().filter((s) => s.company === 505);
  expect(data.customer.afterSaleServices.pageInfo.totalCount).toBe(own.length);
  expect(data.customer.afterSaleServices.items.every((i) => typeof i.content === 'string')).toBe(true);
  expect(t.sim.calls.of('list')[0]!.datas).toEqual(expect.objectContaining({ datatype: 'tel', ord: '505' }));
});

it('afterSaleServices { items { customer { name } } } resolves names in the customers subgraph', async () => {
  const r = await postJson(gatewayUrl, { query: '{ afterSaleServices(pageSize: 5) { items { id customer { id name } } } }' });
  const items = (r.json as { data: { afterSaleServices: { items: Array<{ id: string; customer: { id: string; name: string } }> } } }).data.afterSaleServices.items;
  expect(items).toHaveLength(5);
  for (const item of items) {
    const service = t.sim.world.service(Number(item.id))!;
    expect(item.customer).toEqual({ id: String(service.company), name: t.sim.world.customer(service.company)!.name });
  }
  expect(t.sim.calls.count('detail')).toBe(0);
});

it('_entities fan-in: 50 representations with duplicates = one detail call per distinct id', async () => {
  const ids = Array.from({ length: 50 }, (_, i) => String(1001 + (i % 17)));
  const r = await postJson(t.app.url, {
    query: 'query($r: [_Any!]!) { _entities(representations: $r) { ... on AfterSaleService { id title content } } }',
    variables: { r: ids.map((id) => ({ __typename: 'AfterSaleService', id })) },
  });
  const entities = (r.json as { data: { _entities: Array<{ id: string } | null> } }).data._entities;
  expect(entities).toHaveLength(50);
  expect(t.sim.calls.count('detail')).toBe(17);
});

describe('the published SDL and its breaking-change check', () => {
  const ROOT = join(__dirname, '..');

  it('subgraph.graphql is exactly what `_service { sdl }` serves, cost weights included', () => {
    expect(readFileSync(join(ROOT, 'subgraph.graphql'), 'utf8')).toBe(ourSdl);
    expect(ourSdl).toContain('handleService(input: HandleServiceInput!): HandleServicePayload! @cost(weight: 2)');
  });

  it('fails on a breaking change against the committed SDL until it is recorded, and on a stale SDL', () => {
    const current = readFileSync(join(ROOT, 'subgraph.graphql'), 'utf8');
    const record = readRecord(join(ROOT, 'schema-changes.json'));
    expect(checkSchema(current, current, record).problems).toEqual([]);

    // The committed SDL had a field the current one lacks: a removal.
    const committed = current.replace(/^type AfterSaleService\b([^{]*)\{/m, (m) => `${m}\n  legacyCode: String\n`);
    const removal = { type: 'FIELD_REMOVED', description: 'AfterSaleService.legacyCode was removed.' };
    const failed = checkSchema(committed, current, record);
    expect(failed.unrecorded).toEqual([removal]);
    expect(failed.problems).toEqual([`breaking change not recorded in schema-changes.json: FIELD_REMOVED: ${removal.description}`, expect.stringContaining('stale')]);

    // Recorded, the removal passes; the committed file still has to be re-printed.
    const accepted = checkSchema(committed, current, { accepted: [...record.accepted, { version: '9.9.9', ...removal }] });
    expect(accepted.problems).toEqual([expect.stringContaining('stale')]);
    // A non-breaking change (a field added) only makes the committed SDL stale.
    expect(checkSchema(current, committed, record).problems).toEqual([expect.stringContaining('stale')]);
    expect(checkSchema(null, current, record).problems).toEqual([expect.stringContaining('no committed SDL')]);
  });

  it('`schema:check` exits non-zero on an unrecorded breaking change; `schema:print` refuses to write it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'schema-check-'));
    try {
      const sdlFile = join(dir, 'subgraph.graphql');
      const recordFile = join(dir, 'schema-changes.json');
      const committed = ourSdl.replace(/^type AfterSaleService\b([^{]*)\{/m, (m) => `${m}\n  legacyCode: String\n`);
      writeFileSync(sdlFile, committed);
      copyFileSync(join(ROOT, 'schema-changes.json'), recordFile);
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [require.resolve('ts-node/dist/bin'), '--transpile-only', join(ROOT, 'scripts', 'print-schema.ts'), ...args, '--sdl', sdlFile, '--record', recordFile], { cwd: ROOT, encoding: 'utf8' });

      const check = run('check');
      expect(check.status).toBe(1);
      expect(check.stderr).toContain('FIELD_REMOVED: AfterSaleService.legacyCode was removed.');

      const print = run('print');
      expect(print.status).toBe(1);
      expect(readFileSync(sdlFile, 'utf8')).toBe(committed);

      // Accepting records it under the version and prints; then the check passes.
      expect(run('print', '--accept', '0.3.0').status).toBe(0);
      expect(readRecord(recordFile).accepted).toContainEqual({ version: '0.3.0', type: 'FIELD_REMOVED', description: 'AfterSaleService.legacyCode was removed.' });
      expect(readFileSync(sdlFile, 'utf8')).toBe(ourSdl);
      expect(run('check').status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});
