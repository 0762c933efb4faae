import {
  getDirectiveValues,
  getNamedType,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isAbstractType,
  isObjectType,
  Kind,
  type FieldNode,
  type GraphQLNamedType,
  type GraphQLResolveInfo,
  type SelectionNode,
  type SelectionSetNode,
} from 'graphql';
import { SERVICE_FIELDS } from '../domain/field-map';
import type { ItemSelection } from '../domain/request-scope';

/**
 * What a page's items are asked for, read from the page resolver's own selection: through fragments, and honouring
 * `@skip` / `@include` with the request's variables, as execution will (graphql-js collects fields the same way). The
 * domain then brings the items' details along with the page when a field the list rows lack is selected
 * (request-scope.ts), so those fields answer at once instead of each waiting for the detail loader on its own.
 */
export function itemSelection(info: GraphQLResolveInfo): ItemSelection {
  // The same field of the same (stored) document asks the same, unless a directive reads the request's variables.
  const node = info.fieldNodes.length === 1 ? info.fieldNodes[0] : undefined;
  const known = node && kept.get(node);
  if (known) return known;
  const walk: Walk = { info, directives: false };
  const selection = selectionOf(walk);
  if (node && !walk.directives) kept.set(node, Object.freeze(selection));
  return selection;
}

/** Selections by the page field's node, while its document is kept (Apollo's document store). */
const kept = new WeakMap<FieldNode, ItemSelection>();

interface Walk {
  readonly info: GraphQLResolveInfo;
  /** Whether any selection walked carries a directive: what it selects may then change with the variables. */
  directives: boolean;
}

function selectionOf(walk: Walk): ItemSelection {
  const { info } = walk;
  const page = getNamedType(info.returnType);
  const items = isObjectType(page) ? page.getFields().items : undefined;
  if (!isObjectType(page) || !items) return { fields: [], erpFields: false };
  const itemsNodes = fieldsOf(walk, page, info.fieldNodes).filter((f) => f.name.value === 'items');
  const names = new Set(fieldsOf(walk, getNamedType(items.type), itemsNodes).map((f) => f.name.value));
  return { fields: SERVICE_FIELDS.filter((f) => names.has(f)), erpFields: names.has('erpFields') };
}

/** The fields selected under `nodes` on an object of `type`. */
function fieldsOf(walk: Walk, type: GraphQLNamedType, nodes: readonly FieldNode[]): FieldNode[] {
  const { info } = walk;
  const found: FieldNode[] = [];
  const visit = (set: SelectionSetNode | undefined) => {
    for (const selection of set?.selections ?? []) {
      if (selection.directives?.length) walk.directives = true;
      if (!included(info, selection)) continue;
      if (selection.kind === Kind.FIELD) found.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        if (applies(info, type, selection.typeCondition?.name.value)) visit(selection.selectionSet);
      } else {
        const fragment = info.fragments[selection.name.value];
        if (fragment?.directives?.length) walk.directives = true;
        if (fragment && applies(info, type, fragment.typeCondition.name.value)) visit(fragment.selectionSet);
      }
    }
  };
  for (const node of nodes) visit(node.selectionSet);
  return found;
}

function included(info: GraphQLResolveInfo, node: SelectionNode): boolean {
  if (getDirectiveValues(GraphQLSkipDirective, node, info.variableValues)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, info.variableValues)?.if !== false;
}

/** Whether a fragment on `condition` applies to an object of `type` (the type itself, or an interface or union of it). */
function applies(info: GraphQLResolveInfo, type: GraphQLNamedType, condition: string | undefined): boolean {
  if (condition === undefined || condition === type.name) return true;
  const other = info.schema.getType(condition);
  return other !== undefined && isAbstractType(other) && isObjectType(type) && info.schema.isSubType(other, type);
}
