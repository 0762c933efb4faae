import {
  Kind,
  type DocumentNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { SERVICE_FIELDS } from '../domain/field-map';
import type { ServiceField } from '../domain/model';
import { DEFAULT_OPTION_LOOKUP, optionLookupCalls } from '../domain/options';
import { UnreachableCaseError } from '../erp/unreachable';
import { userInputError } from './errors';

/**
 * What an operation will cost before it runs: the ERP calls it implies, the service objects it returns and the
 * `_entities` representations it carries, computed from the document and its variables alone. The server admits or
 * refuses an operation on this estimate (per-operation limits, and the in-flight memory budget), so a request over a
 * bound is refused before any ERP call. The rules mirror how the resolvers spend calls: a list page is one list call;
 * a service needs its detail (one call, shared by all its fields) when a field the list row lacks is selected, or when
 * it is fetched by id; `handleService` is one save plus one confirming re-read; `afterSaleServiceOptions` is a whole
 * learning pass (one list page plus its details), though a kept answer costs none. Fields under `@skip`/`@include`
 * are counted as selected: the estimate never undercounts. One module on purpose (a little over 200 lines): the walk
 * over the document and the cost rules are read together whenever a resolver changes how it spends calls.
 */
export interface OperationEstimate {
  erpCalls: number;
  /** Service objects in the response (list rows, details, entities). */
  items: number;
  /** `_entities` representations, over every alias. */
  representations: number;
}

export interface EstimateRules {
  /** Whether the list row carries the field (no detail call needed): the field map's list columns. */
  onListRow(field: ServiceField): boolean;
  /** `pageSize` when the operation leaves it out. */
  defaultPageSize: number;
  /** ERP calls of one option-lookup learning pass at most; the domain default's when absent. */
  optionLookupCalls?: number;
}

/** Entity types this subgraph resolves from `_entities`, with the key it reads. */
const ENTITY_TYPES = new Set(['AfterSaleService', 'Customer', 'Contract', 'Product', 'Project']);
const RELATED = new Set(['Customer', 'Contract', 'Product', 'Project']);
const SERVICE_FIELD_SET = new Set<string>(SERVICE_FIELDS);
/** Service fields that are entities owned elsewhere: their own selection is costed on that type. */
const ENTITY_FIELDS: Record<string, string> = { customer: 'Customer', contract: 'Contract', project: 'Project', product: 'Product' };

type Representation = { __typename: string; id: string | number };

interface Cost {
  erpCalls: number;
  items: number;
}

const ZERO: Cost = { erpCalls: 0, items: 0 };
const add = (a: Cost, b: Cost): Cost => ({ erpCalls: a.erpCalls + b.erpCalls, items: a.items + b.items });

class Estimator {
  representations = 0;
  /** Whether a variable's value was read: an estimate that read none is the same for every run of the operation. */
  readVariables = false;

  constructor(
    private readonly fragments: ReadonlyMap<string, FragmentDefinitionNode>,
    private readonly variables: Readonly<Record<string, unknown>>,
    private readonly rules: EstimateRules,
  ) {}

  /** The selected fields (aliases counted once each) that apply to `typeName`, fragments flattened. */
  private *fields(set: SelectionSetNode, typeName: string): Generator<{ name: string; args: readonly { name: string; value: ValueNode }[]; set?: SelectionSetNode }> {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        yield { name: sel.name.value, args: (sel.arguments ?? []).map((a) => ({ name: a.name.value, value: a.value })), ...(sel.selectionSet ? { set: sel.selectionSet } : {}) };
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        if (!sel.typeCondition || sel.typeCondition.name.value === typeName) yield* this.fields(sel.selectionSet, typeName);
      } else {
        const fragment = this.fragments.get(sel.name.value);
        if (fragment && fragment.typeCondition.name.value === typeName) yield* this.fields(fragment.selectionSet, typeName);
      }
    }
  }

  /** Type conditions used directly under `_entities` (inline fragments and spreads), with their selections. */
  private *entityBranches(set: SelectionSetNode): Generator<{ typeName: string; set: SelectionSetNode }> {
    for (const sel of set.selections) {
      if (sel.kind === Kind.INLINE_FRAGMENT && sel.typeCondition) yield { typeName: sel.typeCondition.name.value, set: sel.selectionSet };
      else if (sel.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = this.fragments.get(sel.name.value);
        if (fragment) yield { typeName: fragment.typeCondition.name.value, set: fragment.selectionSet };
      }
    }
  }

  private value(node: ValueNode | undefined): unknown {
    if (!node) return undefined;
    switch (node.kind) {
      case Kind.VARIABLE:
        this.readVariables = true;
        return this.variables[node.name.value];
      case Kind.INT:
        return Number(node.value);
      case Kind.FLOAT:
        return Number(node.value);
      case Kind.STRING:
      case Kind.ENUM:
        return node.value;
      case Kind.BOOLEAN:
        return node.value;
      case Kind.NULL:
        return null;
      case Kind.LIST:
        return node.values.map((v) => this.value(v));
      case Kind.OBJECT:
        return Object.fromEntries(node.fields.map((f) => [f.name.value, this.value(f.value)]));
      default:
        throw new UnreachableCaseError(node);
    }
  }

  private pageSize(args: readonly { name: string; value: ValueNode }[]): number {
    const given = this.value(args.find((a) => a.name === 'pageSize')?.value);
    // An invalid pageSize fails argument checks before any call; counting it as the default is enough then.
    return typeof given === 'number' && Number.isInteger(given) && given > 0 ? given : this.rules.defaultPageSize;
  }

  /** One page of services (`afterSaleServices`) for each of `times` parents. */
  private page(args: readonly { name: string; value: ValueNode }[], set: SelectionSetNode | undefined, times: number): Cost {
    const size = this.pageSize(args);
    let cost: Cost = { erpCalls: times, items: 0 };
    for (const f of set ? this.fields(set, 'AfterSaleServicePage') : []) {
      if (f.name === 'items' && f.set) cost = add(add(cost, { erpCalls: 0, items: times * size }), this.service(f.set, times * size, 'list'));
    }
    return cost;
  }

  /**
   * `times` services. From a list row, one detail call each when any selected field is not on the row; from a detail
   * read (by id, entity, or the save's re-read) the detail is already paid for by the caller.
   */
  private service(set: SelectionSetNode, times: number, origin: 'list' | 'detail'): Cost {
    let needsDetail = false;
    let nested: Cost = ZERO;
    for (const f of this.fields(set, 'AfterSaleService')) {
      if (f.name === 'erpFields') needsDetail = true;
      else if (SERVICE_FIELD_SET.has(f.name) && !this.rules.onListRow(f.name as ServiceField)) needsDetail = true;
      const related = ENTITY_FIELDS[f.name];
      if (related && f.set) nested = add(nested, this.related(related, f.set, times));
    }
    return add(nested, { erpCalls: origin === 'list' && needsDetail ? times : 0, items: 0 });
  }

  /** `times` records of a type another subgraph owns: only our `afterSaleServices` field costs anything. */
  private related(typeName: string, set: SelectionSetNode, times: number): Cost {
    let cost = ZERO;
    for (const f of this.fields(set, typeName)) if (f.name === 'afterSaleServices') cost = add(cost, this.page(f.args, f.set, times));
    return cost;
  }

  private entities(args: readonly { name: string; value: ValueNode }[], set: SelectionSetNode | undefined): Cost {
    const reps = checkRepresentations(this.value(args.find((a) => a.name === 'representations')?.value));
    this.representations += reps.length;
    const byType = new Map<string, number>();
    for (const r of reps) byType.set(r.__typename, (byType.get(r.__typename) ?? 0) + 1);
    let cost: Cost = { erpCalls: byType.get('AfterSaleService') ?? 0, items: byType.get('AfterSaleService') ?? 0 };
    for (const branch of set ? this.entityBranches(set) : []) {
      const times = byType.get(branch.typeName) ?? 0;
      if (times === 0) continue;
      if (branch.typeName === 'AfterSaleService') cost = add(cost, this.service(branch.set, times, 'detail'));
      else if (RELATED.has(branch.typeName)) cost = add(cost, this.related(branch.typeName, branch.set, times));
    }
    return cost;
  }

  operation(op: OperationDefinitionNode): Cost {
    const root = op.operation === 'query' ? 'Query' : op.operation === 'mutation' ? 'Mutation' : 'Subscription';
    let cost = ZERO;
    for (const f of this.fields(op.selectionSet, root)) {
      if (root === 'Query' && f.name === 'afterSaleServices') cost = add(cost, this.page(f.args, f.set, 1));
      else if (root === 'Query' && f.name === 'afterSaleService') cost = add(cost, add({ erpCalls: 1, items: 1 }, f.set ? this.service(f.set, 1, 'detail') : ZERO));
      else if (root === 'Query' && f.name === '_entities') cost = add(cost, this.entities(f.args, f.set));
      else if (root === 'Query' && f.name === 'afterSaleServiceOptions') {
        // Worst case, per alias: the kept answer and the shared pass are per identity, not known before execution.
        cost = add(cost, { erpCalls: this.rules.optionLookupCalls ?? optionLookupCalls(DEFAULT_OPTION_LOOKUP.sampleSize), items: 0 });
      }
      else if (root === 'Subscription' && f.name === 'afterSaleServiceChanged') {
        // Per event: the poll's list call (shared by the key's subscribers, counted whole) and the one service it
        // carries, from the list row; a field the row lacks is one detail read. Estimated for the transports that
        // go through Apollo (the HTTP callback protocol): the subscribing request is admitted like any other.
        cost = add(cost, { erpCalls: 1, items: 1 });
        for (const c of f.set ? this.fields(f.set, 'AfterSaleServiceChange') : []) if (c.name === 'service' && c.set) cost = add(cost, this.service(c.set, 1, 'list'));
      }
      else if (root === 'Mutation' && f.name === 'handleService') {
        cost = add(cost, { erpCalls: 2, items: 1 });
        for (const p of f.set ? this.fields(f.set, 'HandleServicePayload') : []) if (p.name === 'service' && p.set) cost = add(cost, this.service(p.set, 1, 'detail'));
      }
    }
    return cost;
  }
}

/**
 * `_entities` input is client data the federation library passes through untyped: every representation must be an
 * object with a `__typename` we resolve and a scalar `id`, or the request is refused as a whole, before any call.
 */
export function checkRepresentations(value: unknown): Representation[] {
  if (!Array.isArray(value)) throw userInputError('representations must be a list of objects', { field: 'representations' });
  value.forEach((rep: unknown, index) => {
    const r = rep as Partial<Record<string, unknown>> | null;
    const where = { field: 'representations', index };
    if (r === null || typeof r !== 'object' || Array.isArray(r)) throw userInputError(`representations[${index}] must be an object`, where);
    if (typeof r.__typename !== 'string' || !ENTITY_TYPES.has(r.__typename)) {
      throw userInputError(`representations[${index}] needs a __typename this subgraph resolves (${[...ENTITY_TYPES].join(', ')})`, where);
    }
    const id = r.id;
    if (!(typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)))) {
      throw userInputError(`representations[${index}].id must be a string or an integer`, where);
    }
  });
  return value as Representation[];
}

export function estimateOperation(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  rules: EstimateRules,
): OperationEstimate {
  return estimateWith(document, operation, variables, rules).estimate;
}

function estimateWith(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  rules: EstimateRules,
): { estimate: OperationEstimate; readVariables: boolean } {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const estimator = new Estimator(fragments, variables ?? {}, rules);
  const cost = estimator.operation(operation);
  return { estimate: { ...cost, representations: estimator.representations }, readVariables: estimator.readVariables };
}

/**
 * `estimateOperation` under fixed rules, kept per operation when the estimate read no variable: the document store
 * hands the same parsed operation to every request with the same text, and its estimate is then the same each time
 * (a page's size given inline, or no `_entities`). Kept by the operation node, so it goes when the document does.
 * An estimate that reads variables (a `$pageSize`, `_entities` representations) is made per request, as is a refusal.
 */
export function operationEstimator(
  rules: EstimateRules,
): (document: DocumentNode, operation: OperationDefinitionNode, variables: Readonly<Record<string, unknown>> | undefined) => OperationEstimate {
  const kept = new WeakMap<OperationDefinitionNode, OperationEstimate>();
  return (document, operation, variables) => {
    const known = kept.get(operation);
    if (known) return known;
    const { estimate, readVariables } = estimateWith(document, operation, variables, rules);
    if (!readVariables) kept.set(operation, Object.freeze(estimate));
    return estimate;
  };
}
