import type { OptionListName } from '../../domain/options';
import type { GraphQLContext } from '../context';
import { guarded } from '../errors';
import type { AfterSaleOptionList, AfterSaleServiceOptionsResolvers, QueryResolvers } from '../generated/resolvers-types';

/** Domain list names -> the schema's enum; a new list fails to compile until it is mapped. */
const LIST_NAMES: Record<OptionListName, AfterSaleOptionList> = {
  categories: 'CATEGORIES',
  urgencies: 'URGENCIES',
  handlingStates: 'HANDLING_STATES',
  acceptanceChannels: 'ACCEPTANCE_CHANNELS',
  people: 'PEOPLE',
  departments: 'DEPARTMENTS',
};

/**
 * Kept per ERP identity by the domain service; a learning pass runs its calls within this request's ERP slots (and
 * keeps running for the other callers of that identity if this request goes away).
 */
export const afterSaleServiceOptions: NonNullable<QueryResolvers<GraphQLContext>['afterSaleServiceOptions']> = (_root, _args, ctx) =>
  guarded(() => ctx.optionLookups.lookups(ctx.erp, ctx.erpSlots));

export const AfterSaleServiceOptions: AfterSaleServiceOptionsResolvers = {
  partialLists: (o) => o.partialLists.map((name) => LIST_NAMES[name]),
};
