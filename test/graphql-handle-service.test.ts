import { startStack, type TestStack } from './helpers';

/** handleService: SAVED / REJECTED / UNKNOWN, validation with no ERP call, idempotency. */
let t: TestStack;
beforeAll(async () => {
  t = await startStack();
});
afterAll(() => t.close());
beforeEach(() => {
  t.sim.calls.clear();
  t.sim.faults.reset();
});

const HANDLE = `mutation H($input: HandleServiceInput!) {
  handleService(input: $input) { outcome message userErrors { field message code } service { id handlingContent handlingResult result { id name } } }
}`;
type Payload = { handleService: { outcome: string; message: string | null; userErrors: Array<{ field: string; code: string; message: string }>; service: Record<string, unknown> | null } };
let n = 0;
const input = (over: Record<string, unknown> = {}) => ({ id: '1010', assigneeId: '2', note: `note ${++n}`, salespersonId: '5', result: '已解决', ...over });

it('SAVED: sends chuli.asp once, re-reads the service and returns it', async () => {
  const i = input();
  const r = await t.gql<Payload>(HANDLE, { input: i });
  expect(r.data!.handleService).toEqual({
    outcome: 'SAVED', message: '保存成功！', userErrors: [],
    service: { id: '1010', handlingContent: i.note, handlingResult: '已解决', result: { id: '3', name: '已解决' } },
  });
  expect(t.sim.calls.all().map((c) => c.endpoint)).toEqual(['process', 'detail']);
  expect(t.sim.calls.of('process')[0]).toEqual(expect.objectContaining({
    cmdkey: '__sys_dosave', datas: { ord: '1010', cateid: '2', info1: i.note, cate: '5', intro: '已解决' },
  }));
});

it.each<[string, string, Record<string, unknown>]>([
  ['note', 'REQUIRED', { note: '' }],
  ['assigneeId', 'REQUIRED', { assigneeId: '   ' }],
  ['result', 'TOO_LONG', { result: '好'.repeat(51) }],
  ['note', 'TOO_LONG', { note: 'x'.repeat(4001) }],
  ['salespersonId', 'TOO_LONG', { salespersonId: '5'.repeat(51) }],
  ['assigneeId', 'INVALID', { assigneeId: 'zhang' }],
  ['id', 'INVALID', { id: 'abc' }],
])('validation: %s %s is REJECTED with no ERP call', async (field, code, over) => {
  const r = await t.gql<Payload>(HANDLE, { input: input(over) });
  expect(r.data!.handleService.outcome).toBe('REJECTED');
  expect(r.data!.handleService.userErrors).toEqual([expect.objectContaining({ field, code })]);
  expect(t.sim.calls.count()).toBe(0);
});

it('accepts exactly the limits (50 / 4000 characters, counted as characters)', async () => {
  const r = await t.gql<Payload>(HANDLE, { input: input({ result: '好'.repeat(50), note: '说'.repeat(4000) }) });
  expect(r.data!.handleService.outcome).toBe('SAVED');
});

it('REJECTED with the ERP text when the ERP refuses', async () => {
  const r = await t.gql<Payload>(HANDLE, { input: input({ assigneeId: '999' }) });
  expect(r.data!.handleService).toEqual(expect.objectContaining({
    outcome: 'REJECTED', message: '指派售后人员不存在', service: null,
    userErrors: [{ field: 'assigneeId', code: 'REJECTED_BY_ERP', message: '指派售后人员不存在' }],
  }));
  expect(t.sim.calls.count('process')).toBe(1);
});

it('UNKNOWN when the connection drops after the ERP received the save; exactly one save, no retry', async () => {
  t.sim.faults.inject({ kind: 'dropAfterProcess', endpoint: 'process' });
  const i = input();
  const r = await t.gql<Payload>(HANDLE, { input: i });
  expect(r.data!.handleService.outcome).toBe('UNKNOWN');
  expect(t.sim.calls.count('process')).toBe(1);
  // The ERP did store it: UNKNOWN was the honest answer.
  expect(t.sim.world.service(1010)!.introN).toBe(i.note);
});

it('UNKNOWN when the ERP times out after receiving the save', async () => {
  const s = await startStack({ env: { ZB_TIMEOUT_MS: '300' } });
  try {
    s.sim.faults.inject({ kind: 'stall', endpoint: 'process' });
    const r = await s.gql<Payload>(HANDLE, { input: input() });
    expect(r.data!.handleService.outcome).toBe('UNKNOWN');
    expect(s.sim.calls.count('process')).toBe(1);
  } finally {
    await s.close();
  }
});

it('UNKNOWN when the ERP says "saved" but the record does not show it', async () => {
  t.sim.faults.inject({ kind: 'silentSave', endpoint: 'process' });
  const r = await t.gql<Payload>(HANDLE, { input: input() });
  expect(r.data!.handleService.outcome).toBe('UNKNOWN');
  expect(r.data!.handleService.message).toContain('保存成功！');
});

it('an ERP that cannot be reached before sending is an error, not UNKNOWN', async () => {
  const s = await startStack({ env: { ZB_RETRIES: '0' } });
  await s.sim.close();
  try {
    const r = await s.gql<Payload>(HANDLE, { input: input() });
    expect(r.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
  } finally {
    await s.app.close();
  }
});

describe('idempotency', () => {
  it('50 concurrent calls with one key cause exactly one save and one payload', async () => {
    const i = { ...input(), idempotencyKey: 'key-50' };
    const results = await Promise.all(Array.from({ length: 50 }, () => t.gql<Payload>(HANDLE, { input: i })));
    expect(t.sim.calls.count('process')).toBe(1);
    for (const r of results) expect(r.data!.handleService).toEqual(results[0]!.data!.handleService);
    expect(results[0]!.data!.handleService.outcome).toBe('SAVED');
  });

  it('a repeat after completion returns the first payload without a second save', async () => {
    const i = { ...input(), idempotencyKey: 'key-repeat' };
    const first = await t.gql<Payload>(HANDLE, { input: i });
    const again = await t.gql<Payload>(HANDLE, { input: i });
    expect(again.data).toEqual(first.data);
    expect(t.sim.calls.count('process')).toBe(1);
  });

  it('the same key with different input is BAD_USER_INPUT', async () => {
    await t.gql<Payload>(HANDLE, { input: { ...input(), idempotencyKey: 'key-x' } });
    const r = await t.gql<Payload>(HANDLE, { input: { ...input(), idempotencyKey: 'key-x' } });
    expect(r.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'idempotencyKey' }));
    expect(t.sim.calls.count('process')).toBe(1);
  });

  it('an UNKNOWN outcome is kept under its key: a repeat does not save again', async () => {
    t.sim.faults.inject({ kind: 'dropAfterProcess', endpoint: 'process' });
    const i = { ...input(), idempotencyKey: 'key-unknown' };
    const first = await t.gql<Payload>(HANDLE, { input: i });
    const again = await t.gql<Payload>(HANDLE, { input: i });
    expect(first.data!.handleService.outcome).toBe('UNKNOWN');
    expect(again.data).toEqual(first.data);
    expect(t.sim.calls.count('process')).toBe(1);
  });
});
