/**
 * Client input at the domain's boundary. Each operation has one `parse...Input` (filter.ts: the list; handle.ts:
 * handleService; `parseServiceId` here: one service by id) that checks and normalises what a client sent, once,
 * before anything is sent to the ERP. What it returns is what everything below uses: ids arrive trimmed and checked,
 * so the loader, the repository and the mapping never trim or check them again.
 */

/** A client value the domain refuses, tied to the input field at fault; the GraphQL layer shows it as BAD_USER_INPUT. */
export class InputError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** ERP ids are integers; the ERP splices them into SQL, so anything else is refused before any call. */
const ERP_ID = /^\d{1,10}$/;

export const isErpId = (text: string): boolean => ERP_ID.test(text);

/** A client value quoted in an error message, cut short: an error must not echo a 60 KB input back. */
export function quote(value: string): string {
  return value.length <= 24 ? `'${value}'` : `'${value.slice(0, 24)}...' (${value.length} characters)`;
}

/** An ERP id as the client sent it, trimmed and checked; InputError on `field` otherwise. */
export function parseErpId(field: string, raw: string): string {
  const id = raw.trim();
  if (!isErpId(id)) throw new InputError(field, `${quote(raw)} is not an ERP id (a positive integer)`);
  return id;
}

declare const serviceId: unique symbol;
/** A service id (the ERP's `ord`) that passed `parseServiceId`: trimmed and an ERP id. */
export type ServiceId = string & { readonly [serviceId]: true };

/** `afterSaleService(id)`, an `_entities` representation, or a service's own id before its detail is loaded. */
export function parseServiceId(raw: string): ServiceId {
  return parseErpId('id', raw) as ServiceId;
}

/** The same rule for input that reports problems as userErrors (handleService) instead of throwing. */
export function serviceIdOrNull(raw: string): ServiceId | null {
  const id = raw.trim();
  return isErpId(id) ? (id as ServiceId) : null;
}
