import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { composeServices } from '@apollo/composition';
import { composeServices as guildCompose } from '@theguild/federation-composition';
import { parse, type DocumentNode } from 'graphql';
import YAML from 'yaml';
import { currentSdl } from '../scripts/print-schema';

/**
 * Our subgraph must compose next to subgraphs we do not control. The hostile neighbour defines the generic names a
 * subgraph is likely to use: a Relay `PageInfo`, a `UserError` whose `field` is a path, a `Label`, a `SortDirection`
 * with other values, a `DateTime` scalar and a `Node` interface. Composed with the stub owners of the entities we
 * extend, exactly as supergraph.yaml lists them, by both composition libraries.
 */
const ROOT = join(__dirname, '..');

const NEIGHBOUR_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  scalar DateTime
  interface Node { id: ID! }
  type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }
  type UserError { field: [String!] message: String! }
  type Label { id: ID! name: String! color: String }
  enum SortDirection { ASCENDING DESCENDING }
  type Ticket implements Node @key(fields: "id") { id: ID! createdAt: DateTime! labels: [Label!]! }
  type TicketEdge { cursor: String! node: Ticket! }
  type TicketConnection { edges: [TicketEdge!]! pageInfo: PageInfo! }
  type CreateTicketPayload { ticket: Ticket userErrors: [UserError!]! }
  type Query { node(id: ID!): Node tickets(first: Int, after: String, order: SortDirection = ASCENDING): TicketConnection! }
  type Mutation { createTicket(title: String!, dueAt: DateTime): CreateTicketPayload! }
`;

/** The 0.1.0 definitions of the names this subgraph used to own (copied from its SDL before the rename). */
const OLD_NAMES_SDL = `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@shareable"])
  type Query { afterSaleServices(page: Int = 1, pageSize: Int = 20, direction: SortDirection = ASC): AfterSaleServicePage! }
  type Mutation { handleService(id: ID!): HandleServicePayload! }
  type AfterSaleServicePage { items: [AfterSaleService!]! pageInfo: PageInfo! }
  type AfterSaleService @key(fields: "id") { id: ID! category: Label urgency: Label }
  type HandleServicePayload { userErrors: [UserError!]! }
  type Label { id: ID name: String! }
  type PageInfo { page: Int! pageSize: Int! totalCount: Int! totalPages: Int! hasNextPage: Boolean! }
  type UserError { field: String! message: String! code: UserErrorCode! }
  enum UserErrorCode { REQUIRED TOO_LONG INVALID REJECTED_BY_ERP }
  enum SortDirection { ASC DESC }
`;

interface SubgraphConfig {
  routing_url: string;
  schema: { file?: string; sdl?: string };
}

interface Subgraph {
  name: string;
  url: string;
  typeDefs: DocumentNode;
}

/** supergraph.yaml's subgraphs, read the way rover reads them (a file path relative to the config, or inline SDL). */
function supergraphConfig(): Subgraph[] {
  const config = YAML.parse(readFileSync(join(ROOT, 'supergraph.yaml'), 'utf8')) as { subgraphs: Record<string, SubgraphConfig> };
  return Object.entries(config.subgraphs).map(([name, s]) => {
    const sdl = s.schema.sdl ?? (s.schema.file ? readFileSync(join(ROOT, s.schema.file), 'utf8') : undefined);
    if (sdl === undefined) throw new Error(`supergraph.yaml: ${name} has no schema`);
    return { name, url: s.routing_url, typeDefs: parse(sdl) };
  });
}

const neighbour: Subgraph = { name: 'tickets', url: 'http://tickets.example.internal/graphql', typeDefs: parse(NEIGHBOUR_SDL) };

const messages = (errors: readonly { message: string }[] | undefined) => (errors ?? []).map((e) => e.message);

describe('composition next to a hostile neighbour', () => {
  const subgraphs = [...supergraphConfig(), neighbour];

  it('supergraph.yaml composes the published SDL, which is the current one', async () => {
    const config = supergraphConfig();
    expect(config.map((s) => s.name).sort()).toEqual(['aftersale', 'contracts', 'customers', 'products', 'projects']);
    expect(readFileSync(join(ROOT, 'subgraph.graphql'), 'utf8')).toBe(await currentSdl());
    expect(messages(composeServices(config).errors)).toEqual([]);
    expect(messages(guildCompose(config).errors)).toEqual([]);
  });

  it('@apollo/composition composes us with the neighbour and the owners; DateTime is merged, the cost weights kept', () => {
    const result = composeServices(subgraphs);
    expect(messages(result.errors)).toEqual([]);
    const sdl = result.supergraphSdl!;
    // One DateTime for both subgraphs (scalars merge), the neighbour's own PageInfo beside ours.
    expect(sdl.match(/^scalar DateTime\b/gm)).toHaveLength(1);
    expect(sdl).toMatch(/^type PageInfo\b/m);
    expect(sdl).toMatch(/^type AfterSaleServicePageInfo\b/m);
    // The demand-control weights reach the supergraph, where the router reads them.
    expect(sdl).toContain('https://specs.apollo.dev/cost/v0.1');
    expect(sdl).toMatch(/afterSaleServices\([^)]*\): AfterSaleServicePage! .*@listSize\(slicingArguments: \["pageSize"\], sizedFields: \["items"\]/);
    expect(sdl).toMatch(/handleService\(input: HandleServiceInput!\): HandleServicePayload! .*@cost\(weight: 2\)/);
    expect(sdl).toMatch(/^\s+content: String .*@cost\(weight: 1\)/m);
  });

  it('@theguild/federation-composition composes the same', () => {
    const result = guildCompose(subgraphs);
    expect(messages(result.errors)).toEqual([]);
    const sdl = result.errors ? '' : result.supergraphSdl;
    expect(sdl.match(/^scalar DateTime\b/gm)).toHaveLength(1);
    expect(sdl).toContain('https://specs.apollo.dev/cost/v0.1');
    expect(sdl).toContain('@cost(weight: 2)');
  });

  it('the change feed composes: Subscription.afterSaleServiceChanged reaches the supergraph in both compositions', () => {
    const apollo = composeServices(subgraphs);
    const guild = guildCompose(subgraphs);
    expect(messages(apollo.errors)).toEqual([]);
    expect(messages(guild.errors)).toEqual([]);
    for (const sdl of [apollo.supergraphSdl!, guild.errors ? '' : guild.supergraphSdl]) {
      expect(sdl).toMatch(/^\s+subscription: Subscription$/m);
      expect(sdl).toMatch(/^type Subscription\b[^{]*@join__type\(graph: AFTERSALE\)/m);
      expect(sdl).toMatch(/afterSaleServiceChanged\(filter: AfterSaleServiceFilter\): AfterSaleServiceChange!/);
      expect(sdl).toMatch(/^enum AfterSaleServiceChangeKind\b/m);
      expect(sdl).toMatch(/^type AfterSaleServiceChange\b/m);
    }
  });

  it('the old names fail next to the same neighbour, in both compositions', () => {
    const old = [...supergraphConfig().filter((s) => s.name !== 'aftersale'), { name: 'aftersale', url: 'http://localhost:4001/graphql', typeDefs: parse(OLD_NAMES_SDL) }, neighbour];
    for (const errors of [composeServices(old).errors, guildCompose(old).errors]) {
      const text = messages(errors).join('\n');
      expect(text).toContain('"PageInfo.hasNextPage"');
      expect(text).toContain('Type of field "UserError.field" is incompatible');
      expect(text).toContain('"Label.name"');
      expect(text).toContain('enum type "SortDirection"');
    }
  });
});
