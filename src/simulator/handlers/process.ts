import { HANDLED_RESULT } from '../dataset';
import { DELETED_TEXT, NO_PERMISSION_TEXT, message, ok, type Reply } from '../protocol';
import type { SimUser } from '../users';
import type { World } from '../world';
import type { Datas } from './datas';

/** chuli.asp's form rules (ERP-PROTOCOL.md §8), checked in form order; the first failure is the answer. */
const RULES: Array<{ id: string; caption: string; max: number }> = [
  { id: 'cateid', caption: '指派售后', max: 50 },
  { id: 'info1', caption: '处理说明', max: 4000 },
  { id: 'cate', caption: '客户销售人员', max: 50 },
  { id: 'intro', caption: '处理结果', max: 50 },
];

export interface ProcessOptions {
  successText: string;
  /** Answer success and store nothing (the "ok but nothing saved" fault). */
  silent: boolean;
  /** Told when a save is stored (the call log marks it: tests count saves the ERP really kept). */
  stored?: () => void;
}

function userIds(value: string, w: World): number[] | undefined {
  const parts = value.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0 || parts.some((p) => !/^\d+$/.test(p) || !w.person(Number(p)))) return undefined;
  return parts.map(Number);
}

export function handleProcess(cmdkey: string, datas: Datas, user: SimUser, session: string, w: World, options: ProcessOptions): Reply {
  const ordText = (datas.get('ord') ?? '').trim();
  const s = /^\d+$/.test(ordText) ? w.service(Number(ordText)) : undefined;
  if (!s) return message(session, DELETED_TEXT);
  if (!w.canSee(user, s)) return message(session, NO_PERMISSION_TEXT);

  if (cmdkey !== '__sys_dosave') {
    // The initial load: the processing form in edit mode.
    const fields = RULES.map((r) => ({ id: r.id, caption: r.caption, dbtype: 'string', type: r.id === 'info1' ? 'textarea' : 'text', text: '', value: '' }));
    return ok(session, { model: 'bill', action: 'init', bill: { id: 'service_chuli', caption: '售后处理', value: String(s.ord), uitype: '', tools: [], groups: [{ id: 'base', caption: '处理', visible: true, fields }] } });
  }

  const values: Record<string, string> = {};
  for (const rule of RULES) {
    const v = datas.get(rule.id) ?? '';
    if (v.trim() === '') return message(session, `${rule.caption}不能为空`, '');
    if ([...v].length > rule.max) return message(session, `${rule.caption}长度不能超过${rule.max}个字符`, '');
    values[rule.id] = v;
  }
  const assignees = userIds(values.cateid!, w);
  if (!assignees) return message(session, '指派售后人员不存在', '');
  const salesperson = userIds(values.cate!, w);
  if (!salesperson || salesperson.length !== 1) return message(session, '客户销售人员不存在', '');

  if (!options.silent) {
    s.cateid = assignees;
    s.cate = salesperson[0]!;
    s.introN = values.info1!;
    s.intro = values.intro!;
    s.result1 = HANDLED_RESULT;
    options.stored?.();
  }
  return message(session, options.successText);
}
