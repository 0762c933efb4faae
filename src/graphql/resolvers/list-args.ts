import type { ServiceListQuery, ServiceSort } from '../../domain/filter';
import type { AfterSaleServiceFilter, AfterSaleServiceSort, AfterSaleServiceSortField, InputMaybe } from '../generated/resolvers-types';

/** Every sort field the schema offers -> our domain field. A new enum value fails to compile until it is mapped. */
const SORT_FIELDS: Record<AfterSaleServiceSortField, ServiceSort['field']> = {
  ID: 'id',
  CODE: 'code',
  TITLE: 'title',
  CUSTOMER_NAME: 'customerName',
  PRODUCT_NAME: 'productName',
  CATEGORY: 'category',
  URGENCY: 'urgency',
  RESULT: 'result',
  ASSIGNEE: 'assignee',
  ACCEPTED_AT: 'acceptedAt',
  CREATED_BY: 'createdBy',
  FEE: 'fee',
};

export interface ListArgs {
  filter?: InputMaybe<AfterSaleServiceFilter>;
  page: number;
  pageSize: number;
  sort?: InputMaybe<AfterSaleServiceSort>;
}

/** The schema's list arguments in domain terms, unchecked: the domain's `parseListInput` checks them. */
export function listInput(args: ListArgs): ServiceListQuery {
  return {
    filter: args.filter ?? null,
    page: args.page,
    pageSize: args.pageSize,
    sort: args.sort ? { field: SORT_FIELDS[args.sort.field], direction: args.sort.direction ?? 'ASC' } : null,
  };
}
