import type { Option, Service } from '../dataset';
import { DELETED_TEXT, NO_PERMISSION_TEXT, formatDate, formatNumber, message, ok, type Reply } from '../protocol';
import type { SimUser } from '../users';
import { optionName, type World } from '../world';
import type { Datas } from './datas';

interface Field {
  id: string;
  caption: string;
  dbtype: 'int' | 'number' | 'date' | 'bool' | 'string';
  type: string;
  text: string;
  value: string;
  source?: { type: 'options'; options: Array<{ n: string; v: string }> };
}

const text = (id: string, caption: string, value: string, type = 'text'): Field => ({ id, caption, dbtype: 'string', type, text: value, value: '' });

/** A select in edit mode: the display text plus the option id in `value`, with its option list. */
function select(id: string, caption: string, options: Option[], chosen: number): Field {
  return {
    id, caption, dbtype: 'int', type: 'select',
    text: optionName(options, chosen), value: String(chosen),
    source: { type: 'options', options: options.map((o) => ({ n: o.name, v: String(o.id) })) },
  };
}

/** A relation picker (customer, contract, project, product): name in `text`, record id in `value`. */
function relation(id: string, caption: string, target: { id: number; name: string } | undefined): Field {
  return { id, caption, dbtype: 'int', type: 'treebox', text: target?.name ?? '', value: target ? String(target.id) : '' };
}

/** A person picker: space-separated names; edit value `deptIds|subDeptIds|userIds`. */
function people(id: string, caption: string, w: World, userIds: number[]): Field {
  const depts = [...new Set(userIds.map((u) => w.person(u)?.dept).filter((d): d is number => d !== undefined))];
  return {
    id, caption, dbtype: 'string', type: 'source',
    text: w.personNames(userIds), value: userIds.length ? `${depts.join(',')}||${userIds.join(',')}` : '',
  };
}

export function billFields(s: Service, w: World): Array<{ id: string; caption: string; fields: Field[] }> {
  const customer = w.customer(s.company);
  const contract = w.contract(s.contract);
  const project = w.project(s.chance);
  const product = w.product(s.product);
  return [
    {
      id: 'base', caption: '基本信息', fields: [
        text('shid', '售后编号', s.shid),
        text('title', '售后主题', s.title),
        relation('company', '客户名称', customer && { id: customer.id, name: customer.name }),
        text('person', '联系人', s.person),
        text('phone', '电话', s.phone),
        text('mobile', '手机', s.mobile),
        relation('contract', '关联合同', contract && { id: contract.id, name: contract.title }),
        relation('chance', '关联项目', project && { id: project.id, name: project.title }),
        relation('product', '产品名称', product && { id: product.id, name: product.name }),
        select('sort1', '售后分类', w.data.categories, s.sort1),
        select('great1', '紧急程度', w.data.urgencies, s.great1),
        select('way1', '受理方式', w.data.ways, s.way1),
        { id: 'date1', caption: '受理日期', dbtype: 'date', type: 'date', text: formatDate(s.date1, s.ord % 5 === 0), value: '' },
        { id: 'money1', caption: '售后费用', dbtype: 'number', type: 'text', text: formatNumber(s.money1), value: '' },
      ],
    },
    {
      id: 'content', caption: '售后内容', fields: [
        text('introts', '售后内容', s.introts, 'webbox'),
        text('introb', '备注', s.introb, 'textarea'),
      ],
    },
    {
      id: 'handle', caption: '处理信息', fields: [
        people('cateid', '售后人员', w, s.cateid),
        people('cate', '销售人员', w, [s.cate]),
        select('result1', '处理结果', w.data.results, s.result1),
        text('introN', '处理内容', s.introN, 'textarea'),
        text('intro', '处理结果说明', s.intro),
        text('addcate', '添加人', w.person(s.addcate)?.name ?? ''),
      ],
    },
  ];
}

export function handleDetail(datas: Datas, user: SimUser, session: string, w: World): Reply {
  const ordText = (datas.get('ord') ?? '').trim();
  if (ordText === '') {
    // An add page without `ord` hands out a new id for the form to save into.
    const groups = [{ id: 'base', caption: '基本信息', visible: true, fields: [text('title', '售后主题', '')] }];
    return ok(session, { model: 'bill', action: 'init', bill: { id: 'service_bill', caption: '添加售后', value: String(w.allocateOrd()), uitype: '', tools: [], groups } });
  }
  const s = /^\d+$/.test(ordText) ? w.service(Number(ordText)) : undefined;
  if (!s) return message(session, DELETED_TEXT);
  if (!w.canSee(user, s)) return message(session, NO_PERMISSION_TEXT);
  const groups = billFields(s, w).map((g) => ({ ...g, visible: true }));
  return ok(session, {
    model: 'bill', action: 'init',
    bill: { id: 'service_bill', caption: '售后详情', value: String(s.ord), uitype: '', tools: [], groups },
  });
}
