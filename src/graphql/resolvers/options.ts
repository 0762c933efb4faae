import type { OptionListName } from '../../domain/options';
import type { AfterSaleOptionList, AfterSaleServiceOptionsResolvers } from '../generated/resolvers-types';

/** Domain list names -> the schema's enum; a new list fails to compile until it is mapped. */
const LIST_NAMES: Record<OptionListName, AfterSaleOptionList> = {
  categories: 'CATEGORIES',
  urgencies: 'URGENCIES',
  handlingStates: 'HANDLING_STATES',
  acceptanceChannels: 'ACCEPTANCE_CHANNELS',
  people: 'PEOPLE',
  departments: 'DEPARTMENTS',
};

export const AfterSaleServiceOptions: AfterSaleServiceOptionsResolvers = {
  partialLists: (o) => o.partialLists.map((name) => LIST_NAMES[name]),
};
