import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as ApolloCore from '@apollo/client/core' with { 'resolution-mode': 'import' };
import { Kind, isInterfaceType, parse, print, type DocumentNode, type OperationDefinitionNode } from 'graphql';
import { buildSchema } from '../src/graphql/schema';
import { startStack, type TestStack } from './helpers';

// @apollo/client 3's entry points are typed as ESM but ship a CommonJS build (`core.cjs`), which is what jest loads on
// Node 20; `node16` resolution refuses a static import of them, so: types from the typings, values from require.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ApolloClient, ApolloLink, HttpLink, InMemoryCache } = require('@apollo/client/core') as typeof ApolloCore;
type NormalizedCacheObject = ApolloCore.NormalizedCacheObject;
type PossibleTypesMap = ApolloCore.PossibleTypesMap;

/**
 * A normalised client cache must give back exactly what the wire said. Apollo Client's InMemoryCache keys every object
 * by `__typename` + `id`: with one `Label` type for all ERP option sets (ids repeat across sets) and the ERP field
 * name as `ErpField.id`, unrelated objects were merged (service 1001's `result { id: "3", name: "已解决" }` read back
 * as `{ id: "3", name: "非常紧急" }`, its urgency). Runs the README's example queries plus list rows and details with
 * several option fields through a real ApolloClient against the simulator.
 */

/** The README's "Example queries" block, one document per operation, in README order. */
function readmeOperations(): DocumentNode[] {
  const readme = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Example queries'));
  const block = /```graphql\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README has no graphql block under "Example queries"');
  return parse(block).definitions
    .filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)
    .map((op) => parse(print(op)));
}

/** possibleTypes from the schema itself, as a client would generate them from introspection. */
function possibleTypes(): PossibleTypesMap {
  const schema = buildSchema();
  const map: PossibleTypesMap = {};
  for (const type of Object.values(schema.getTypeMap())) {
    if (isInterfaceType(type) && !type.name.startsWith('_')) map[type.name] = schema.getPossibleTypes(type).map((t) => t.name);
  }
  return map;
}

const OPTIONS = 'category { id name } urgency { id name } result { id name }';
const LIST_ROWS = parse(`{ afterSaleServices(pageSize: 20, sort: { field: ID, direction: ASC }) { items { id title ${OPTIONS} } } }`);
const DETAIL_IDS = Array.from({ length: 12 }, (_, i) => String(1001 + i));
const DETAILS = parse(`{ ${DETAIL_IDS.map((id) => `s${id}: afterSaleService(id: "${id}") { id title ${OPTIONS} acceptedVia { id name } erpFields { key caption text value } }`).join(' ')} }`);
const BY_INTERFACE = parse(`
  query Options { afterSaleService(id: "1001") { id category { ...Option } urgency { ...Option } result { ...Option } acceptedVia { ...Option } } }
  fragment Option on AfterSaleOption { id name }
`);

type Json = Record<string, unknown>;
interface Option { __typename: string; id: string | null; name: string }

let t: TestStack;
let client: ApolloCore.ApolloClient<NormalizedCacheObject>;
/** The last response body's `data` exactly as it came over HTTP, before the cache saw it. */
let wire: Json | undefined;

function newClient(): ApolloCore.ApolloClient<NormalizedCacheObject> {
  const tap = new ApolloLink((operation, forward) =>
    forward(operation).map((result) => {
      expect(result.errors).toBeUndefined();
      wire = structuredClone(result.data) as Json;
      return result;
    }),
  );
  return new ApolloClient({
    link: tap.concat(new HttpLink({ uri: t.app.url })),
    cache: new InMemoryCache({ possibleTypes: possibleTypes() }),
  });
}

/** Fetches over HTTP, then reads the same query back from the cache: it must be the wire answer, field for field. */
async function roundTrip(query: DocumentNode): Promise<Json> {
  wire = undefined;
  await client.query({ query, fetchPolicy: 'network-only' });
  const said = wire!;
  expect(client.readQuery({ query })).toEqual(said);
  return said;
}

/** Every option object in a response, wherever it sits. */
function optionsIn(value: unknown, out: Option[] = []): Option[] {
  if (Array.isArray(value)) for (const v of value) optionsIn(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Json;
    if (typeof o.__typename === 'string' && o.__typename.startsWith('AfterSale') && 'name' in o && 'id' in o && !('title' in o)) out.push(o as unknown as Option);
    for (const v of Object.values(o)) optionsIn(v, out);
  }
  return out;
}

beforeAll(async () => {
  t = await startStack();
  client = newClient();
});

afterAll(async () => {
  client.stop();
  await t.close();
});

it('the README example queries run as written and read back from the cache as the wire said', async () => {
  const [list, detail, mutation, ...rest] = readmeOperations();
  expect(rest).toEqual([]);
  await roundTrip(list!);
  const said = await roundTrip(detail!);
  const service = said.afterSaleService as Json;
  expect(service.id).toBe('1001');
  expect((service.erpFields as Json[]).length).toBeGreaterThan(15);
  expect((service.erpFields as Json[])[0]).toEqual(expect.objectContaining({ __typename: 'AfterSaleErpField', key: expect.any(String) }));

  wire = undefined;
  await client.mutate({ mutation: mutation! });
  const payload = wire!.handleService as Json;
  expect(payload.outcome).toBe('SAVED');
  // The payload's service is the same cache entry as the detail's: it now holds what the save returned.
  const saved = payload.service as Json;
  expect(client.readFragment({ id: 'AfterSaleService:1001', fragment: parse('fragment S on AfterSaleService { id handlingContent handlingResult }') })).toEqual(saved);
  // After the save the detail, fetched again, is again exactly what the wire says (result now 已解决).
  const after = await roundTrip(detail!);
  expect((after.afterSaleService as Json).handlingContent).toBe(saved.handlingContent);
});

it('list rows and details with several option fields read back exactly, also after each other', async () => {
  const rows = await roundTrip(LIST_ROWS);
  const items = (rows.afterSaleServices as { items: Json[] }).items;
  expect(items.map((i) => i.id)).toContain('1001');
  // List rows carry option names only: null ids, which InMemoryCache does not take for an identity.
  expect(optionsIn(items).every((o) => o.id === null)).toBe(true);
  expect(new Set(optionsIn(items).map((o) => o.name)).size).toBeGreaterThan(3);

  const details = await roundTrip(DETAILS);
  const options = optionsIn(details);
  // The data has what confused the old cache: the same option id in different sets with different names.
  const clash = options.find((a) => options.some((b) => b.id === a.id && b.__typename !== a.__typename && b.name !== a.name));
  expect(clash).toBeDefined();
  expect(new Set(options.map((o) => o.__typename))).toEqual(new Set(['AfterSaleCategory', 'AfterSaleUrgency', 'AfterSaleHandlingState', 'AfterSaleAcceptanceChannel']));

  const viaInterface = await roundTrip(BY_INTERFACE);
  expect(optionsIn(viaInterface)).toHaveLength(4);

  // Everything cached so far, read again after all the writes: details unchanged; list rows keep every name (a
  // detail read of the same service may fill in an option id the list row did not have, never another name).
  expect(client.readQuery({ query: DETAILS })).toEqual(details);
  const rowsAgain = (client.readQuery({ query: LIST_ROWS }) as { afterSaleServices: { items: Json[] } }).afterSaleServices.items;
  const names = (xs: Json[]) => optionsIn(xs).map((o) => `${o.__typename}:${o.name}`);
  expect(names(rowsAgain)).toEqual(names(items));
  for (const o of optionsIn(rowsAgain)) if (o.id !== null) expect(options).toContainEqual(o);
});

it('control: the same answers with one shared option type (the old Label) do come back wrong', async () => {
  await client.query({ query: DETAILS, fetchPolicy: 'network-only' });
  const asLabels = JSON.parse(JSON.stringify(wire), (_k, v: unknown) => {
    const o = v as Json | null;
    return o && typeof o === 'object' && typeof o.__typename === 'string' && optionsIn([o]).length === 1 ? { ...o, __typename: 'Label' } : v;
  }) as Json;
  const cache = new InMemoryCache();
  cache.writeQuery({ query: DETAILS, data: asLabels });
  expect(cache.readQuery({ query: DETAILS })).not.toEqual(asLabels);
});
