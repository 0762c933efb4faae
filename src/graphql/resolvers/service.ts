import type { AfterSaleService as ServiceModel, ServiceField, ServiceFields } from '../../domain/model';
import type { GraphQLContext } from '../context';
import type { AfterSaleServiceResolvers } from '../generated/resolvers-types';

/**
 * A field the service already carries (the list had the column, or this is a detail read) resolves at once, without
 * a promise; any other field waits for the request's detail loader. So a query that asks only for list columns calls
 * no detail, and the fields are mapped from the ERP's reply only as they are asked for (domain/mapping.ts).
 */
function field<K extends ServiceField>(name: K) {
  const pick = (detail: ServiceModel | null): ServiceFields[K] | null => (detail ? detail.get(name) : null);
  return (service: ServiceModel, _args: unknown, ctx: GraphQLContext): ServiceFields[K] | null | Promise<ServiceFields[K] | null> =>
    service.has(name) ? service.get(name) : ctx.services.services.byId(service.id).then(pick);
}

const detailErpFields = (detail: ServiceModel | null) => detail?.erpFields() ?? [];

export const AfterSaleService: AfterSaleServiceResolvers = {
  // Representations were checked before execution (graphql/cost.ts): an integer id is accepted as its text.
  __resolveReference: (ref, ctx) => ctx.services.services.byId(String(ref.id)),
  id: (s) => s.id,
  code: field('code'),
  title: field('title'),
  category: field('category'),
  urgency: field('urgency'),
  result: field('result'),
  // An entity reference is { id, name } already: the type's own resolvers (entities.ts) take it from there.
  customer: field('customer'),
  customerName: field('customerName'),
  productName: field('productName'),
  assignee: field('assignee'),
  acceptedAt: field('acceptedAt'),
  createdBy: field('createdBy'),
  fee: field('fee'),
  content: field('content'),
  handlingContent: field('handlingContent'),
  remark: field('remark'),
  contactPerson: field('contactPerson'),
  phone: field('phone'),
  mobile: field('mobile'),
  contract: field('contract'),
  project: field('project'),
  product: field('product'),
  acceptedVia: field('acceptedVia'),
  salesperson: field('salesperson'),
  handlingResult: field('handlingResult'),
  erpFields: (s, _args, ctx) => s.erpFields() ?? ctx.services.services.byId(s.id).then(detailErpFields),
};
