import { buildSchema, execute, parse, type GraphQLResolveInfo } from 'graphql';
import type { ItemSelection } from '../src/domain/request-scope';
import { itemSelection } from '../src/graphql/selection';

/**
 * What a page's items are asked for is read once per stored document (graphql/selection.ts keeps it by the page
 * field's node), except where a directive makes it depend on the request's variables: the same document run with
 * other variables must then be read again.
 */
const schema = buildSchema(`
  type AfterSaleService { id: ID! title: String remark: String content: String }
  type AfterSaleServicePage { items: [AfterSaleService!]! }
  type Query { afterSaleServices: AfterSaleServicePage! }
`);

function selectionsOf(source: string, runs: Array<Record<string, unknown>>): ItemSelection[] {
  // One parsed document for every run, as Apollo's document store hands it out.
  const document = parse(source);
  const seen: ItemSelection[] = [];
  const rootValue = {
    afterSaleServices: (_args: unknown, _ctx: unknown, info: GraphQLResolveInfo) => {
      seen.push(itemSelection(info));
      return { items: [] };
    },
  };
  for (const variableValues of runs) {
    const result = execute({ schema, document, rootValue, variableValues });
    if ('errors' in result && result.errors) throw result.errors[0];
  }
  return seen;
}

it('a document without directives selects the same every run', () => {
  const [a, b] = selectionsOf('{ afterSaleServices { items { id title ... on AfterSaleService { remark } } } }', [{}, {}]);
  expect(a).toEqual({ fields: ['title', 'remark'], erpFields: false });
  expect(b).toEqual(a);
});

it.each([
  ['a field', 'query($on: Boolean!) { afterSaleServices { items { id remark @include(if: $on) } } }', ['remark']],
  ['an inline fragment', 'query($on: Boolean!) { afterSaleServices { items { id ... @include(if: $on) { content } } } }', ['content']],
  ['a fragment spread', 'query($on: Boolean!) { afterSaleServices { items { id ...F @include(if: $on) } } } fragment F on AfterSaleService { title }', ['title']],
  ['the items field', 'query($on: Boolean!) { afterSaleServices { items @include(if: $on) { remark } items { id } } }', ['remark']],
])('@include on %s follows each run\'s variables', (_where, source, fields) => {
  const runs = selectionsOf(source, [{ on: false }, { on: true }, { on: false }]);
  expect(runs.map((s) => s.fields)).toEqual([[], fields, []]);
});
