import { startSimulator, type Simulator } from '../src/simulator/server';
import { PENDING_RESULT } from '../src/simulator/dataset';

/** The simulator's protocol rules, over raw HTTP, with no help from our client. */
const LIST = '/sysa/mobilephone/salesmanage/service/list.asp';
const ADD = '/sysa/mobilephone/salesmanage/service/add.asp';
const CHULI = '/sysa/mobilephone/salesmanage/service/chuli.asp';

let sim: Simulator;
let session: string;

async function post(path: string, body: unknown, contentType = 'application/zsml; charset=utf-8') {
  const res = await fetch(sim.url + path, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw protocol JSON, inspected freely in tests
async function call(path: string, cmdkey: string, datas: Record<string, string | number>, token = session): Promise<any> {
  const r = await post(path, { session: token, cmdkey, datas: Object.entries(datas).map(([id, val]) => ({ id, val })) });
  return JSON.parse(r.text);
}
type Row = Record<string, string>;
async function listAll(datas: Record<string, string | number>): Promise<Row[]> {
  const reply = await call(LIST, 'refresh', { pagesize: 1000, ...datas });
  expect(Number(reply.header.status)).toBe(0);
  const { cols, rows } = reply.body.source.table as { cols: Array<{ id: string }>; rows: string[][] };
  return rows.map((r) => Object.fromEntries(cols.map((c, i) => [c.id, r[i]!])));
}

beforeAll(async () => {
  sim = await startSimulator({ sessionTimeoutMs: 60000 });
});
// A fresh admin token per test: the session tests move the simulator's clock past the timeout.
beforeEach(async () => {
  const login = JSON.parse((await post('/webapi/v3/ov1/login', { datas: [{ id: 'user', val: 'txt:admin' }, { id: 'password', val: 'txt:zb-sim-admin' }, { id: 'serialnum', val: 'txt:proto' }] })).text);
  session = login.header.session;
});
afterAll(() => sim.close());

describe('transport', () => {
  it('answers 404 plain text for an unknown page, HTML for a form post, JSON for JS literals', async () => {
    const missing = await post('/sysa/nothing.asp', {});
    expect(missing.status).toBe(404);
    expect(missing.type).toMatch(/text\/plain/);
    const form = await post(LIST, 'a=1', 'application/x-www-form-urlencoded');
    expect(form.text.startsWith('<!DOCTYPE html>')).toBe(true);
    const literal = await post(LIST, `{session: '${session}', cmdkey: 'refresh', datas: [{id: 'pagesize', val: 2}]}`);
    expect(JSON.parse(literal.text).body.source.table.rows).toHaveLength(2);
  });

  it('serves login on both paths, with the txt: convention and a failure body', async () => {
    const alt = JSON.parse((await post('/sysa/mobilephone/login.asp', { datas: [{ id: 'user', val: 'txt:lina' }, { id: 'password', val: 'txt:lina-pass' }, { id: 'serialnum', val: 'txt:x' }] })).text);
    expect(alt.header).toEqual(expect.objectContaining({ status: 0, appversion: '32.17' }));
    const bad = JSON.parse((await post('/webapi/v3/ov1/login', { datas: [{ id: 'user', val: 'txt:lina' }, { id: 'password', val: 'lina-pass' }] })).text);
    expect(bad.header.status).not.toBe(0);
    expect(bad.header.session).toBeUndefined();
    expect(bad.body).toEqual(expect.objectContaining({ model: 'init', action: 'fail' }));
  });

  it('answers status 15 without a session and 2 for an unknown one', async () => {
    expect((await call(LIST, 'refresh', {}, '')).header.status).toBe(15);
    expect((await call(LIST, 'refresh', {}, 'NOPE')).header.status).toBe(2);
  });
});

describe('sessions', () => {
  async function login(user: string, password: string, serial: string): Promise<string> {
    const r = JSON.parse((await post('/webapi/v3/ov1/login', { datas: [{ id: 'user', val: `txt:${user}` }, { id: 'password', val: `txt:${password}` }, { id: 'serialnum', val: `txt:${serial}` }] })).text);
    return r.header.session;
  }
  it('expires a token after the inactivity timeout (simulated clock)', async () => {
    const token = await login('lina', 'lina-pass', 'a');
    expect((await call(LIST, 'refresh', {}, token)).header.status).toBe(0);
    sim.advanceClock(61000);
    const reply = await call(LIST, 'refresh', {}, token);
    expect(reply.header).toEqual({ status: 2, message: '会话超时，请您重新登录。' });
  });
  it('kicks an older token when the user logs in on another device', async () => {
    const first = await login('zhangwei', 'zhangwei-pass', 'phone-1');
    await login('zhangwei', 'zhangwei-pass', 'phone-2');
    expect((await call(LIST, 'refresh', {}, first)).header.status).toBe(1);
  });
  it('answers 4 and 5 for invalid and frozen users, 9 for a PC kick', async () => {
    const token = await login('lina', 'lina-pass', 'b');
    sim.sessions.revoke(token, 9);
    expect((await call(LIST, 'refresh', {}, token)).header.status).toBe(9);
    const lina = sim.users.find((u) => u.name === 'lina')!;
    const t2 = await login('lina', 'lina-pass', 'b');
    lina.state = 'frozen';
    expect((await call(LIST, 'refresh', {}, t2)).header.status).toBe(5);
    lina.state = 'invalid';
    expect((await call(LIST, 'refresh', {}, t2)).header.status).toBe(4);
    lina.state = 'active';
  });
});

describe('list.asp', () => {
  it('answers only a report skeleton without cmdkey refresh', async () => {
    const reply = await call(LIST, '', {});
    expect(reply.body.model).toBe('report');
    expect(reply.body.source).toBeUndefined();
  });

  it('pages with defaults 20 / 1 and an exact page object', async () => {
    const reply = await call(LIST, 'refresh', {});
    const { page, rows } = reply.body.source.table;
    const total = sim.world.liveServices().length;
    expect(page).toEqual({ recordcount: total, pagesize: 20, pagecount: Math.ceil(total / 20), pageindex: 1 });
    expect(rows).toHaveLength(20);
    const past = await call(LIST, 'refresh', { pageindex: 999 });
    expect(past.body.source.table.rows).toEqual([]);
  });

  it('formats money with separators and dates in both styles', async () => {
    const rows = await listAll({});
    expect(rows.some((r) => /^\d{1,3}(,\d{3})+\.\d\d$/.test(r.money1!))).toBe(true);
    expect(rows.some((r) => /^\d{4}\/\d{1,2}\/\d{1,2} \d{1,2}:\d\d:\d\d$/.test(r.date1!))).toBe(true);
    expect(rows.some((r) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(r.date1!))).toBe(true);
  });

  it('sorts by a column, descending with "-", and fails on an unknown column', async () => {
    const asc = await listAll({ _rpt_sort: 'ord' });
    const desc = await listAll({ _rpt_sort: '-ord' });
    expect(asc.map((r) => Number(r.ord))).toEqual([...asc.map((r) => Number(r.ord))].sort((a, b) => a - b));
    expect(desc.map((r) => r.ord)).toEqual([...asc].reverse().map((r) => r.ord));
    expect((await call(LIST, 'refresh', { _rpt_sort: 'nope' })).header.status).toBe('11');
  });

  it('shows the empty-result quirk', async () => {
    const reply = await call(LIST, 'refresh', { title: 'no-such-title-anywhere' });
    expect(reply.body.source.table).toEqual({ page: { recordcount: 0, pagesize: 0, pagecount: 0, pageindex: 0 }, cols: [], rows: [] });
  });

  // Each filter, checked against the dataset rather than against itself.
  const w = () => sim.world;
  const byOrd = (rows: Row[]) => rows.map((r) => Number(r.ord)).sort((a, b) => a - b);
  const expected = (pred: (s: ReturnType<Simulator['world']['liveServices']>[number]) => boolean) =>
    w().liveServices().filter(pred).map((s) => s.ord).sort((a, b) => a - b);
  const admin = 1;

  it.each<[string, Record<string, string>, (s: ReturnType<Simulator['world']['liveServices']>[number]) => boolean]>([
    ['remind=22', { remind: '22' }, (s) => s.result1 === PENDING_RESULT && s.cateid.includes(admin)],
    ['remind=137', { remind: '137' }, (s) => s.date1.getTime() >= w().data.today.getTime() - 7 * 86400000],
    ['remind=202', { remind: '202' }, (s) => s.sharedWith.includes(admin)],
    ['stype=1', { stype: '1' }, (s) => s.result1 === PENDING_RESULT],
    ['stype=0', { stype: '0' }, () => true],
    ['datatype=tel', { datatype: 'tel', ord: '505' }, (s) => s.company === 505],
    ['datatype=contract', { datatype: 'contract', ord: '7003' }, (s) => s.contract === 7003],
    ['datatype=product', { datatype: 'product', ord: '302' }, (s) => s.product === 302],
    ['datatype=chance', { datatype: 'chance', ord: '9004' }, (s) => s.chance === 9004],
    ['checktype (UI only)', { checktype: 'radio' }, () => true],
    ['catetype', { catetype: '3' }, (s) => s.cateid.some((id) => w().person(id)?.dept === 3)],
    ['cateid', { cateid: '2,5' }, (s) => s.cateid.includes(2) || s.cateid.includes(5)],
    ['great1', { great1: '2,3' }, (s) => s.great1 === 2 || s.great1 === 3],
    ['result1', { result1: '3' }, (s) => s.result1 === 3],
    ['sort1', { sort1: '1, 4' }, (s) => s.sort1 === 1 || s.sort1 === 4],
    ['title', { title: '卡纸' }, (s) => s.title.includes('卡纸')],
    ['shid', { shid: '202405' }, (s) => s.shid.includes('202405')],
    ['introts', { introts: '保修' }, (s) => s.introts.includes('保修')],
    ['introN', { introN: '远程' }, (s) => s.introN.includes('远程')],
    ['introb', { introb: '备件' }, (s) => s.introb.includes('备件')],
    ['telsort', { telsort: '2' }, (s) => w().customer(s.company)!.sort === 2],
    ['teljz', { teljz: '1' }, (s) => w().customer(s.company)!.value === 1],
    ['area', { area: '1,4' }, (s) => [1, 4].includes(w().customer(s.company)!.area)],
    ['TelName', { TelName: '科技' }, (s) => w().customer(s.company)!.name.includes('科技')],
    ['ProName', { ProName: 'pro' }, (s) => (w().product(s.product)?.name ?? '').toLowerCase().includes('pro')],
    ['searchKey', { searchKey: '安装' }, (s) =>
      [s.title, s.shid, w().customer(s.company)!.name, w().product(s.product)?.name ?? '', s.introts, s.introN, s.introb, s.person].some((t) => t.includes('安装'))],
  ])('filter %s', async (_name, datas, pred) => {
    const want = expected(pred);
    expect(want.length).toBeGreaterThan(0);
    expect(byOrd(await listAll(datas))).toEqual(want);
  });

  it('combines filters with AND and refuses non-numeric multi ids as a script error', async () => {
    const both = await listAll({ great1: '3', sort1: '1' });
    expect(byOrd(both)).toEqual(expected((s) => s.great1 === 3 && s.sort1 === 1));
    expect((await call(LIST, 'refresh', { great1: "1) or 1=1--" })).header.status).toBe('11');
  });

  it('applies ERP row permissions for ordinary users', async () => {
    const r = JSON.parse((await post('/webapi/v3/ov1/login', { datas: [{ id: 'user', val: 'txt:lina' }, { id: 'password', val: 'txt:lina-pass' }, { id: 'serialnum', val: 'txt:perm' }] })).text);
    const reply = await call(LIST, 'refresh', { pagesize: 1000 }, r.header.session);
    const visible = w().liveServices().filter((s) => [s.addcate, s.cate, ...s.cateid, ...s.sharedWith].includes(3)).length;
    expect(reply.body.source.table.page.recordcount).toBe(visible);
    expect(visible).toBeLessThan(w().liveServices().length);
  });
});

describe('add.asp and chuli.asp', () => {
  it('returns a bill by ord, the deleted message for a missing or deleted one, a new id without ord', async () => {
    const bill = await call(ADD, '', { ord: 1001 });
    expect(bill.body.model).toBe('bill');
    expect(bill.body.bill.value).toBe('1001');
    const deleted = sim.world.data.services.find((s) => s.del)!;
    for (const ord of [999999, deleted.ord]) {
      const gone = await call(ADD, '', { ord });
      expect(gone.body).toEqual({ model: 'message', message: expect.objectContaining({ text: '抱歉，您访问的单据已被删除！', target: 'close' }) });
    }
    const fresh = await call(ADD, '', {});
    expect(Number(fresh.body.bill.value)).toBeGreaterThan(1320);
  });

  const valid = { ord: 1002, cateid: '2', info1: '更换滚轮', cate: '5', intro: '已解决' };
  it.each<[Record<string, string | number>, string]>([
    [{ cateid: '' }, '指派售后不能为空'],
    [{ info1: '' }, '处理说明不能为空'],
    [{ cate: '' }, '客户销售人员不能为空'],
    [{ intro: '' }, '处理结果不能为空'],
    [{ intro: '长'.repeat(51) }, '处理结果长度不能超过50个字符'],
    [{ info1: 'x'.repeat(4001) }, '处理说明长度不能超过4000个字符'],
    [{ cateid: '999' }, '指派售后人员不存在'],
  ])('refuses %p with its text', async (change, text) => {
    const reply = await call(CHULI, '__sys_dosave', { ...valid, ...change });
    expect(reply.header.status).toBe(0);
    expect(reply.body.message.text).toBe(text);
    expect(sim.world.service(1002)!.introN).not.toBe('更换滚轮');
  });

  it('stores a valid save and says so', async () => {
    const reply = await call(CHULI, '__sys_dosave', valid);
    expect(reply.body.message).toEqual(expect.objectContaining({ text: '保存成功！', target: 'close' }));
    expect(sim.world.service(1002)).toEqual(expect.objectContaining({ introN: '更换滚轮', intro: '已解决', cateid: [2], cate: 5 }));
  });
});

// Last: these change the simulated world (as someone in the ERP's own UI would), which the tests above read as seeded.
describe('out-of-band changes (sim.world.add / edit / remove)', () => {
  it('an added service comes first on the list, newest first by date (the default) and by id, and has its detail', async () => {
    const added = sim.world.add({ title: '界面里新建的售后', great1: 3 });
    const [byDate] = await listAll({ pagesize: 1 });
    const [byId] = await listAll({ pagesize: 1, _rpt_sort: '-ord' });
    expect(byDate).toEqual(expect.objectContaining({ ord: String(added.ord), title: '界面里新建的售后', great1: '非常紧急' }));
    expect(byId?.ord).toBe(String(added.ord));
    expect((await listAll({ great1: '3' })).map((r) => r.ord)).toContain(String(added.ord));
    const detail = await call(ADD, '', { ord: added.ord });
    expect(detail.body.model).toBe('bill');
    expect(detail.body.bill.value).toBe(String(added.ord));
  });

  it('an edit shows on the list and the detail; a removal drops the row and the detail says deleted', async () => {
    const [first] = await listAll({ pagesize: 1 });
    const ord = Number(first!.ord);
    sim.world.edit(ord, { title: '界面里改的标题', great1: 1 });
    expect((await listAll({ pagesize: 1 }))[0]).toEqual(expect.objectContaining({ ord: String(ord), title: '界面里改的标题', great1: '一般' }));
    sim.world.remove(ord);
    expect((await listAll({})).map((r) => r.ord)).not.toContain(String(ord));
    const detail = await call(ADD, '', { ord });
    expect(detail.body.model).toBe('message');
    expect(detail.body.message.text).toContain('已被删除');
    expect(() => sim.world.edit(ord, { title: 'x' })).toThrow(/no live service/);
  });
});
