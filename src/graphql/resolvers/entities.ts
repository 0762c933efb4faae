import type { GraphQLResolveInfo } from 'graphql';
import type { RelationKind } from '../../domain/filter';
import type { EntityRef } from '../../domain/model';
import type { GraphQLContext } from '../context';
import type { ContractResolvers, CustomerResolvers, ProductResolvers, ProjectResolvers } from '../generated/resolvers-types';
import { itemSelection } from '../selection';
import { listInput, type ListArgs } from './list-args';

/** The entities other subgraphs own; we add their after-sales services through the ERP's `datatype` + `ord`. */
function relatedEntity(kind: RelationKind) {
  return {
    // Representations were checked before execution (graphql/cost.ts): an integer id is accepted as its text.
    __resolveReference: (ref: { id: string | number }) => ({ id: String(ref.id), name: null }),
    id: (e: EntityRef) => e.id,
    afterSaleServices: (e: EntityRef, args: ListArgs, ctx: GraphQLContext, info: GraphQLResolveInfo) =>
      ctx.services.services.list(listInput(args), { kind, id: e.id }, itemSelection(info)),
  };
}

export const Customer: CustomerResolvers = relatedEntity('CUSTOMER');
export const Contract: ContractResolvers = relatedEntity('CONTRACT');
export const Product: ProductResolvers = relatedEntity('PRODUCT');
export const Project: ProjectResolvers = relatedEntity('PROJECT');
