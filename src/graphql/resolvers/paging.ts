import type { RelationKind, ServiceFilter, ServiceListQuery, ServiceSort } from '../../domain/filter';
import type { AfterSaleServiceFilter, AfterSaleServiceSort, AfterSaleServiceSortField, InputMaybe } from '../generated/resolvers-types';
import { userInputError } from '../errors';

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

/** GraphQL list arguments -> the domain query, with paging bounds checked before any ERP call. */
export function listQuery(args: ListArgs, maxPageSize: number, relatedTo?: { kind: RelationKind; id: string }): ServiceListQuery {
  if (!Number.isInteger(args.page) || args.page < 1) throw userInputError('page must be 1 or more', { field: 'page' });
  if (!Number.isInteger(args.pageSize) || args.pageSize < 1 || args.pageSize > maxPageSize) {
    throw userInputError(`pageSize must be between 1 and ${maxPageSize}`, { field: 'pageSize' });
  }
  const filter: ServiceFilter = { ...(args.filter ?? {}) };
  if (relatedTo) {
    if (args.filter?.relatedTo) throw userInputError('filter.relatedTo cannot be used here: the parent record already sets it', { field: 'filter.relatedTo' });
    filter.relatedTo = relatedTo;
  }
  return {
    filter,
    page: args.page,
    pageSize: args.pageSize,
    sort: args.sort ? { field: SORT_FIELDS[args.sort.field], direction: args.sort.direction ?? 'ASC' } : null,
  };
}
