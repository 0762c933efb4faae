import type { ErpData } from '../erp/types';
import { serviceIdOrNull, type ServiceId } from './input';
import type { AfterSaleService } from './model';

/** handleService: chuli.asp's input rules (ERP-PROTOCOL.md §8) and how its answer is judged. */

export interface HandleInput {
  id: string;
  assigneeId: string;
  note: string;
  salespersonId: string;
  result: string;
}

export type UserErrorCode = 'REQUIRED' | 'TOO_LONG' | 'INVALID' | 'REJECTED_BY_ERP';

export interface UserError {
  field: string;
  message: string;
  code: UserErrorCode;
}

export type HandleOutcome = 'SAVED' | 'REJECTED' | 'UNKNOWN';

export interface HandleResult {
  outcome: HandleOutcome;
  message: string | null;
  userErrors: UserError[];
  service: AfterSaleService | null;
}

interface Rule {
  field: keyof HandleInput;
  erpId: string;
  max: number;
  /** The ERP's own caption, used to tie its rejection texts back to our field. */
  caption: string;
  id?: boolean;
}

export const HANDLE_RULES: Rule[] = [
  { field: 'assigneeId', erpId: 'cateid', max: 50, caption: '指派售后', id: true },
  { field: 'note', erpId: 'info1', max: 4000, caption: '处理说明' },
  { field: 'salespersonId', erpId: 'cate', max: 50, caption: '客户销售人员', id: true },
  { field: 'result', erpId: 'intro', max: 50, caption: '处理结果' },
];

const charCount = (s: string) => [...s].length;

declare const validated: unique symbol;
/**
 * Input that passed `parseHandleInput`: the type lets only checked input reach a save, and the check run once. The id
 * is trimmed and the person ids carry no whitespace: what is sent is what was checked.
 */
export type ValidHandleInput = HandleInput & { readonly id: ServiceId; readonly [validated]: true };

export type ParsedHandleInput = { kind: 'valid'; input: ValidHandleInput } | { kind: 'invalid'; userErrors: UserError[] };

/**
 * handleService's input: everything we know the ERP would refuse is a userError here, so no invalid save is ever
 * sent; valid input comes back normalised.
 */
export function parseHandleInput(input: HandleInput): ParsedHandleInput {
  const userErrors: UserError[] = [];
  const id = serviceIdOrNull(input.id);
  if (!id) userErrors.push({ field: 'id', code: 'INVALID', message: 'id must be an ERP service id (a positive integer)' });
  for (const rule of HANDLE_RULES) {
    const value = input[rule.field];
    if (value.trim() === '') userErrors.push({ field: rule.field, code: 'REQUIRED', message: `${rule.field} is required` });
    else if (charCount(value) > rule.max) userErrors.push({ field: rule.field, code: 'TOO_LONG', message: `${rule.field} must be at most ${rule.max} characters (got ${charCount(value)})` });
    // Assumed to be ERP user ids (ERP-PROTOCOL.md §8 [guess]): one id, or several comma-separated.
    else if (rule.id && !/^\s*\d{1,10}(\s*,\s*\d{1,10})*\s*$/.test(value)) {
      userErrors.push({ field: rule.field, code: 'INVALID', message: `${rule.field} must be ERP user ids (comma-separated integers)` });
    }
  }
  if (!id || userErrors.length > 0) return { kind: 'invalid', userErrors };
  const ids = (value: string) => value.replace(/\s+/g, '');
  const valid: HandleInput = { id, assigneeId: ids(input.assigneeId), note: input.note, salespersonId: ids(input.salespersonId), result: input.result };
  return { kind: 'valid', input: valid as ValidHandleInput };
}

/** The payload of a call refused by our own validation: nothing was sent. */
export function rejectedInput(userErrors: UserError[]): HandleResult {
  return { outcome: 'REJECTED', message: null, userErrors, service: null };
}

export function handleDatas(input: ValidHandleInput): ErpData[] {
  return [{ id: 'ord', val: input.id }, ...HANDLE_RULES.map((r) => ({ id: r.erpId, val: input[r.field] }))];
}

/** Ties an ERP rejection text such as `处理结果不能为空` to our field, when its caption starts the text. */
export function rejectionErrors(text: string): UserError[] {
  const rule = [...HANDLE_RULES].sort((a, b) => b.caption.length - a.caption.length).find((r) => text.startsWith(r.caption));
  return [{ field: rule ? rule.field : 'id', code: 'REJECTED_BY_ERP', message: text }];
}

/** The save is confirmed when the re-read record shows what we wrote. */
export function confirmsSave(service: AfterSaleService, input: HandleInput): boolean {
  return service.get('handlingContent') === input.note && service.get('handlingResult') === input.result;
}
