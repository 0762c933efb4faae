import { intBetween, pick, seededRandom, type Random } from './random';

/**
 * The simulator's world: the rows of the ERP's `tousu` table and the records they point at.
 * Generated from a seed so that every run, test and benchmark sees the same data.
 * Over 200 lines because it is data: the option tables, people and records, and the seeded generator that fills them.
 */
export interface Option {
  id: number;
  name: string;
}

export interface Person {
  id: number;
  name: string;
  /** Department id: the list filter `catetype` selects people by it (our reading of "person type"). */
  dept: number;
}

export interface Customer {
  id: number;
  name: string;
  /** 客户分类 (`telsort`). */
  sort: number;
  /** 客户价值 (`teljz`). */
  value: number;
  /** 区域 (`area`). */
  area: number;
  /** The customer's salesperson. */
  salesperson: number;
}

export interface Contract {
  id: number;
  title: string;
  customer: number;
}

export interface Product {
  id: number;
  name: string;
}

export interface Project {
  id: number;
  title: string;
  customer: number;
}

export interface Service {
  ord: number;
  shid: string;
  title: string;
  company: number;
  contract: number | null;
  chance: number | null;
  product: number | null;
  sort1: number;
  great1: number;
  result1: number;
  way1: number;
  /** Assigned after-sales people (user ids). */
  cateid: number[];
  /** The customer's salesperson (user id). */
  cate: number;
  addcate: number;
  person: string;
  phone: string;
  mobile: string;
  /** 售后内容 */
  introts: string;
  /** 处理内容 */
  introN: string;
  /** 备注 */
  introb: string;
  /** 处理结果 (free text written by chuli.asp) */
  intro: string;
  /** 售后费用: a money column, so the list shows thousands separators. */
  money1: number;
  /** Accepted at, as wall-clock parts in the ERP's local time (the ERP stores no zone). */
  date1: Date;
  /** Users the record is shared with (`remind=202`). */
  sharedWith: number[];
  del: boolean;
}

export interface Dataset {
  /** "Today" for the data: `remind=137` (newest) counts back from it. */
  today: Date;
  people: Person[];
  departments: Option[];
  categories: Option[];
  urgencies: Option[];
  results: Option[];
  ways: Option[];
  customerSorts: Option[];
  customerValues: Option[];
  areas: Option[];
  customers: Customer[];
  contracts: Contract[];
  products: Product[];
  projects: Project[];
  services: Service[];
}

const SURNAMES = ['张', '王', '李', '赵', '刘', '陈', '杨', '黄', '周', '吴', '徐', '孙'];
const GIVEN = ['伟', '芳', '娜', '敏', '静', '磊', '洋', '勇', '军', '杰', '涛', '明', '超', '霞'];
const COMPANY_PREFIX = ['华东', '深圳', '北京', '成都', '杭州', '武汉', '西安', '苏州', '青岛', '厦门'];
const COMPANY_CORE = ['精密', '智能', '科技', '电子', '机械', '物流', '医疗', '新材料', '网络', '能源'];
const COMPANY_SUFFIX = ['有限公司', '股份有限公司', '集团', '贸易有限公司'];
const PRODUCTS = ['激光打印机 LP-200', '工业相机 IC-5', '条码扫描枪 BS-9', '热敏标签机 TL-3', '服务器机柜 SR-42',
  '投影仪 PJ-7', '考勤机 AT-1', 'UPS 电源 U-3000', '网络交换机 SW-24', '门禁控制器 AC-2', 'Widget & Co. "Pro" <X>'];
const PROBLEMS = ['卡纸', '无法开机', '安装调试', '定期保养', '软件升级', '更换配件', '网络不通', '噪音过大', '数据丢失', '退换货'];
const DETAILS = ['客户反映设备运行异常，需要上门检查。', '请尽快安排工程师处理。', '已电话沟通，\n客户要求本周内解决。',
  '设备在保修期内。', '需携带备件：\t滚轮、皮带。'];

export const CATEGORIES: Option[] = [
  { id: 1, name: '维修' }, { id: 2, name: '安装' }, { id: 3, name: '保养' }, { id: 4, name: '咨询' }, { id: 5, name: '投诉' },
];
export const URGENCIES: Option[] = [{ id: 1, name: '一般' }, { id: 2, name: '紧急' }, { id: 3, name: '非常紧急' }];
/** `result1`: id 1 is the pending state that `stype=1` and `remind=22` look for. */
export const RESULTS: Option[] = [
  { id: 1, name: '未处理' }, { id: 2, name: '处理中' }, { id: 3, name: '已解决' }, { id: 4, name: '无法解决' },
];
export const PENDING_RESULT = 1;
export const HANDLED_RESULT = 3;
const WAYS: Option[] = [{ id: 1, name: '电话' }, { id: 2, name: '邮件' }, { id: 3, name: '上门' }, { id: 4, name: '在线' }];
const DEPARTMENTS: Option[] = [{ id: 1, name: '售后部' }, { id: 2, name: '销售部' }, { id: 3, name: '技术部' }];
const CUSTOMER_SORTS: Option[] = [{ id: 1, name: '普通客户' }, { id: 2, name: 'VIP客户' }, { id: 3, name: '代理商' }];
const CUSTOMER_VALUES: Option[] = [{ id: 1, name: '高' }, { id: 2, name: '中' }, { id: 3, name: '低' }];
const AREAS: Option[] = [{ id: 1, name: '华东' }, { id: 2, name: '华南' }, { id: 3, name: '华北' }, { id: 4, name: '西南' }];

export interface DatasetOptions {
  seed?: number;
  services?: number;
}

/** People 1..3 are the simulator's login users (see users.ts); the rest only appear in data. */
function makePeople(random: Random): Person[] {
  const people: Person[] = [
    { id: 1, name: '系统管理员', dept: 1 },
    { id: 2, name: '张伟', dept: 1 },
    { id: 3, name: '李娜', dept: 3 },
  ];
  for (let id = 4; id <= 16; id++) {
    people.push({ id, name: pick(random, SURNAMES) + pick(random, GIVEN) + (id > 12 ? pick(random, GIVEN) : ''), dept: intBetween(random, 1, 3) });
  }
  return people;
}

export function createDataset(options: DatasetOptions = {}): Dataset {
  const random = seededRandom(options.seed ?? 20240630);
  const today = new Date(Date.UTC(2024, 5, 30, 0, 0, 0));
  const people = makePeople(random);
  const salespeople = people.filter((p) => p.dept === 2);
  const fallbackSales = people[4] as Person;

  const customers: Customer[] = [];
  const usedNames = new Set<string>();
  for (let i = 0; customers.length < 40; i++) {
    const name = pick(random, COMPANY_PREFIX) + pick(random, COMPANY_CORE) + pick(random, COMPANY_SUFFIX);
    if (usedNames.has(name)) continue;
    usedNames.add(name);
    customers.push({
      id: 501 + customers.length,
      name,
      sort: pick(random, CUSTOMER_SORTS).id,
      value: pick(random, CUSTOMER_VALUES).id,
      area: pick(random, AREAS).id,
      salesperson: (salespeople.length > 0 ? pick(random, salespeople) : fallbackSales).id,
    });
  }
  const products: Product[] = PRODUCTS.map((name, i) => ({ id: 301 + i, name }));
  const contracts: Contract[] = [];
  const projects: Project[] = [];
  for (const customer of customers) {
    const n = intBetween(random, 0, 2);
    for (let i = 0; i < n; i++) {
      contracts.push({ id: 7001 + contracts.length, title: `${customer.name.slice(0, 4)}采购合同${i + 1}`, customer: customer.id });
    }
    if (random() < 0.5) projects.push({ id: 9001 + projects.length, title: `${customer.name.slice(0, 4)}升级项目`, customer: customer.id });
  }

  const services: Service[] = [];
  const count = options.services ?? 320;
  for (let i = 0; i < count; i++) {
    const customer = pick(random, customers);
    const own = contracts.filter((c) => c.customer === customer.id);
    const ownProjects = projects.filter((p) => p.customer === customer.id);
    const product = random() < 0.9 ? pick(random, products) : null;
    const problem = pick(random, PROBLEMS);
    const daysAgo = intBetween(random, 0, 400);
    const date1 = new Date(today.getTime() - daysAgo * 86400000 + intBetween(random, 8, 18) * 3600000 + intBetween(random, 0, 59) * 60000);
    const result1 = pick(random, RESULTS).id;
    const assignees = [intBetween(random, 1, 16)];
    if (random() < 0.15) assignees.push(intBetween(random, 1, 16));
    const ord = 1001 + i;
    services.push({
      ord,
      shid: `SH${date1.getUTCFullYear()}${String(date1.getUTCMonth() + 1).padStart(2, '0')}${String(ord).padStart(5, '0')}`,
      title: `${product ? product.name.split(' ')[0] : '设备'}${problem}`,
      company: customer.id,
      contract: own.length > 0 && random() < 0.7 ? pick(random, own).id : null,
      chance: ownProjects.length > 0 && random() < 0.4 ? pick(random, ownProjects).id : null,
      product: product ? product.id : null,
      sort1: pick(random, CATEGORIES).id,
      great1: pick(random, URGENCIES).id,
      result1,
      way1: pick(random, WAYS).id,
      cateid: [...new Set(assignees)],
      cate: customer.salesperson,
      addcate: intBetween(random, 1, 6),
      person: pick(random, SURNAMES) + pick(random, GIVEN),
      phone: `0${intBetween(random, 10, 99)}-${intBetween(random, 6000000, 8999999)}`,
      mobile: `1${intBetween(random, 30, 89)}${intBetween(random, 10000000, 99999999)}`,
      introts: `${problem}：${pick(random, DETAILS)}`,
      introN: result1 === PENDING_RESULT ? '' : `工程师已${random() < 0.5 ? '上门' : '远程'}处理。`,
      introb: random() < 0.3 ? pick(random, DETAILS) : '',
      intro: result1 === PENDING_RESULT ? '' : pick(random, RESULTS).name,
      money1: random() < 0.6 ? Math.round(random() * 2500000) / 100 : 0,
      date1,
      sharedWith: random() < 0.2 ? [intBetween(random, 1, 3)] : [],
      del: random() < 0.02,
    });
  }

  return {
    today,
    people,
    departments: DEPARTMENTS,
    categories: CATEGORIES,
    urgencies: URGENCIES,
    results: RESULTS,
    ways: WAYS,
    customerSorts: CUSTOMER_SORTS,
    customerValues: CUSTOMER_VALUES,
    areas: AREAS,
    customers,
    contracts,
    products,
    projects,
    services,
  };
}
