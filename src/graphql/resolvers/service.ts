import type { AfterSaleService as ServiceModel, ServiceField, ServiceFields } from '../../domain/model';
import type { GraphQLContext } from '../context';
import type { AfterSaleServiceResolvers } from '../generated/resolvers-types';

/**
 * A field the service already carries (the list had the column, or this is a detail read) resolves at once; any
 * other field waits for the request's detail loader. So a query that asks only for list columns calls no detail.
 */
async function fieldOf<K extends ServiceField>(service: ServiceModel, name: K, ctx: GraphQLContext): Promise<ServiceFields[K] | null> {
  if (service.known.has(name)) return service.fields[name] ?? null;
  const detail = await ctx.services.services.byId(service.id);
  return detail?.fields[name] ?? null;
}

const field =
  <K extends ServiceField>(name: K) =>
  (service: ServiceModel, _args: unknown, ctx: GraphQLContext) =>
    fieldOf(service, name, ctx);

const entity =
  (name: 'customer' | 'contract' | 'project' | 'product') =>
  async (service: ServiceModel, _args: unknown, ctx: GraphQLContext) => {
    const ref = await fieldOf(service, name, ctx);
    return ref ? { id: ref.id, name: ref.name } : null;
  };

export const AfterSaleService: AfterSaleServiceResolvers = {
  // Representations were checked before execution (graphql/cost.ts): an integer id is accepted as its text.
  __resolveReference: (ref, ctx) => ctx.services.services.byId(String(ref.id)),
  id: (s) => s.id,
  code: field('code'),
  title: field('title'),
  category: field('category'),
  urgency: field('urgency'),
  result: field('result'),
  customer: entity('customer'),
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
  contract: entity('contract'),
  project: entity('project'),
  product: entity('product'),
  acceptedVia: field('acceptedVia'),
  salesperson: field('salesperson'),
  handlingResult: field('handlingResult'),
  erpFields: async (s, _args, ctx) => {
    if (s.erpFields) return s.erpFields;
    const detail = await ctx.services.services.byId(s.id);
    return detail?.erpFields ?? [];
  },
};
