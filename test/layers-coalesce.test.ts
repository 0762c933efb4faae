import { compose, type ErpCall, type Send } from '../src/erp/call';
import { ErpAbortedError } from '../src/erp/errors';
import { WriteFence } from '../src/erp/fence';
import { coalesce } from '../src/erp/layers/coalesce';
import type { ErpReply } from '../src/erp/types';

/**
 * The coalescing layer on its own, against an upstream the test answers call by call (as graphql/dataloader's tests
 * assert batches): which reads share a call, who may leave, and the write fence that keeps a read from joining a
 * flight older than a save of what it reads.
 */
interface Pending {
  call: ErpCall;
  resolve(reply: ErpReply): void;
  reject(err: Error): void;
}

function setUp(withFence = true) {
  const pending: Pending[] = [];
  const upstream: Send = (call) => new Promise<ErpReply>((resolve, reject) => pending.push({ call, resolve, reject }));
  let joined = 0;
  const fence = new WriteFence();
  const layer = coalesce({ coalesced: () => joined++ }, withFence ? fence : undefined);
  const send = withFence ? compose(fence, layer)(upstream) : layer.wrap(upstream);
  return { send, pending, fence, joined: () => joined };
}

const reply = (v: string): ErpReply => ({ header: { status: 0, message: 'ok' }, body: { v } });
const detail = (ord: string, extra: Partial<ErpCall> = {}): ErpCall => ({
  endpoint: 'detail',
  path: '/add.asp',
  kind: 'read',
  cmdkey: '',
  datas: [{ id: 'ord', val: ord }],
  auth: { identity: 'svc', token: () => Promise.resolve('t') },
  ...extra,
});
const list = (): ErpCall => ({ endpoint: 'list', path: '/list.asp', kind: 'read', cmdkey: 'refresh', datas: [{ id: 'pagesize', val: '20' }] });
const save = (ord: string): ErpCall => ({
  endpoint: 'process',
  path: '/chuli.asp',
  kind: 'write',
  cmdkey: '__sys_dosave',
  datas: [{ id: 'ord', val: ord }, { id: 'info1', val: 'note' }],
  auth: { identity: 'svc', token: () => Promise.resolve('t') },
});
// Lets settled upstream answers reach the callers before the test looks again.
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

it('identical reads in flight share one call; another ord or identity gets its own', async () => {
  const t = setUp();
  const same = [t.send(detail('1010')), t.send(detail('1010')), t.send(detail('1010'))];
  const otherOrd = t.send(detail('1011'));
  const otherIdentity = t.send(detail('1010', { auth: { identity: 'user:42', token: () => Promise.resolve('u') } }));
  expect(t.pending.map((p) => [p.call.datas[0]!.val, p.call.auth?.identity])).toEqual([
    ['1010', 'svc'],
    ['1011', 'svc'],
    ['1010', 'user:42'],
  ]);
  expect(t.joined()).toBe(2);
  t.pending[0]!.resolve(reply('a'));
  t.pending[1]!.resolve(reply('b'));
  t.pending[2]!.resolve(reply('c'));
  await expect(Promise.all(same)).resolves.toEqual([reply('a'), reply('a'), reply('a')]);
  await expect(otherOrd).resolves.toEqual(reply('b'));
  await expect(otherIdentity).resolves.toEqual(reply('c'));
});

it('a settled flight is not reused: the next identical read is a new call', async () => {
  const t = setUp();
  const first = t.send(detail('1010'));
  t.pending.shift()!.resolve(reply('first'));
  await first;
  const second = t.send(detail('1010'));
  expect(t.pending).toHaveLength(1);
  t.pending.shift()!.resolve(reply('second'));
  await expect(second).resolves.toEqual(reply('second'));
});

it('one caller leaving does not fail the others, nor abort the shared call', async () => {
  const t = setUp();
  const leaver = new AbortController();
  const gone = t.send(detail('1010', { signal: leaver.signal }));
  const stays = t.send(detail('1010', { signal: new AbortController().signal }));
  const noSignal = t.send(detail('1010'));
  expect(t.pending).toHaveLength(1);
  leaver.abort();
  await expect(gone).rejects.toBeInstanceOf(ErpAbortedError);
  expect(t.pending[0]!.call.signal!.aborted).toBe(false);
  t.pending[0]!.resolve(reply('answer'));
  await expect(stays).resolves.toEqual(reply('answer'));
  await expect(noSignal).resolves.toEqual(reply('answer'));
});

it('the last caller leaving aborts the upstream call', async () => {
  const t = setUp();
  const a = new AbortController();
  const b = new AbortController();
  const first = t.send(detail('1010', { signal: a.signal }));
  const second = t.send(detail('1010', { signal: b.signal }));
  expect(t.pending).toHaveLength(1);
  const upstreamSignal = t.pending[0]!.call.signal!;
  a.abort();
  await expect(first).rejects.toBeInstanceOf(ErpAbortedError);
  expect(upstreamSignal.aborted).toBe(false);
  b.abort();
  await expect(second).rejects.toBeInstanceOf(ErpAbortedError);
  expect(upstreamSignal.aborted).toBe(true);
  // The upstream's own rejection after the abort reaches nobody and is not left unhandled.
  t.pending[0]!.reject(new ErpAbortedError({ phase: 'sent' }));
  await settle();
});

it('a caller that already gave up starts no call', async () => {
  const t = setUp();
  await expect(t.send(detail('1010', { signal: AbortSignal.abort() }))).rejects.toBeInstanceOf(ErpAbortedError);
  expect(t.pending).toHaveLength(0);
});

describe('the write fence', () => {
  it('a read after a write of the same ord does not join the flight that started before it', async () => {
    const t = setUp();
    const before = t.send(detail('1010'));
    const write = t.send(save('1010'));
    // While the save is on the wire the older flight may already have run against the old record.
    const during = t.send(detail('1010'));
    expect(t.pending.map((p) => p.call.endpoint)).toEqual(['detail', 'process', 'detail']);
    t.pending[1]!.resolve(reply('saved'));
    await expect(write).resolves.toEqual(reply('saved'));
    // The save's confirming re-read: neither flight started after the save settled, so it joins neither.
    const confirm = t.send(detail('1010'));
    const alongside = t.send(detail('1010'));
    expect(t.pending.map((p) => p.call.endpoint)).toEqual(['detail', 'process', 'detail', 'detail']);
    expect(t.joined()).toBe(1);
    t.pending[3]!.resolve(reply('after'));
    t.pending[2]!.resolve(reply('during'));
    t.pending[0]!.resolve(reply('before'));
    await expect(confirm).resolves.toEqual(reply('after'));
    await expect(alongside).resolves.toEqual(reply('after'));
    await expect(during).resolves.toEqual(reply('during'));
    // The older flights' callers keep their own answers.
    await expect(before).resolves.toEqual(reply('before'));
  });

  it('a failed write moves the fence too (it may have reached the ERP)', async () => {
    const t = setUp();
    const before = t.send(detail('1010'));
    const write = t.send(save('1010'));
    t.pending[1]!.reject(new Error('socket hang up'));
    await expect(write).rejects.toThrow('socket hang up');
    const after = t.send(detail('1010'));
    expect(t.pending.map((p) => p.call.endpoint)).toEqual(['detail', 'process', 'detail']);
    t.pending[0]!.resolve(reply('before'));
    t.pending[2]!.resolve(reply('after'));
    await expect(before).resolves.toEqual(reply('before'));
    await expect(after).resolves.toEqual(reply('after'));
  });

  it('a write of one service fences its detail and the lists, not other services', async () => {
    const t = setUp();
    const other = t.send(detail('1011'));
    const page = t.send(list());
    const write = t.send(save('1010'));
    t.pending[2]!.resolve(reply('saved'));
    await write;
    const otherAgain = t.send(detail('1011'));
    const pageAgain = t.send(list());
    // 1011's flight is still joinable; the list flight is not (a list shows the saved service's result).
    expect(t.pending.map((p) => p.call.endpoint)).toEqual(['detail', 'list', 'process', 'list']);
    t.pending[0]!.resolve(reply('1011'));
    t.pending[1]!.resolve(reply('old page'));
    t.pending[3]!.resolve(reply('new page'));
    await expect(Promise.all([other, otherAgain])).resolves.toEqual([reply('1011'), reply('1011')]);
    await expect(page).resolves.toEqual(reply('old page'));
    await expect(pageAgain).resolves.toEqual(reply('new page'));
  });

  it('writes are never coalesced, even identical ones', async () => {
    const t = setUp();
    const a = t.send(save('1010'));
    const b = t.send(save('1010'));
    expect(t.pending.map((p) => p.call.endpoint)).toEqual(['process', 'process']);
    expect(t.joined()).toBe(0);
    t.pending[0]!.resolve(reply('one'));
    t.pending[1]!.resolve(reply('two'));
    await expect(Promise.all([a, b])).resolves.toEqual([reply('one'), reply('two')]);
  });

  it('without a fence (coalesce alone) writes pass through and reads still share', async () => {
    const t = setUp(false);
    const a = t.send(detail('1010'));
    const w = t.send(save('1010'));
    const b = t.send(detail('1010'));
    expect(t.pending.map((p) => p.call.endpoint)).toEqual(['detail', 'process']);
    t.pending[0]!.resolve(reply('r'));
    t.pending[1]!.resolve(reply('w'));
    await expect(Promise.all([a, w, b])).resolves.toEqual([reply('r'), reply('w'), reply('r')]);
  });
});

describe('WriteFence memory bound', () => {
  it('keeps at most maxTags marks; a forgotten one still fences every read that started before it', () => {
    const fence = new WriteFence(4);
    const old = fence.position();
    for (let ord = 1; ord <= 10; ord++) fence.bump(['list', `detail:${ord}`]);
    expect(fence.size).toBe(4);
    // detail:1 was forgotten long ago: a read from before its write must still count as moved.
    expect(fence.movedSince(['detail:1'], old)).toBe(true);
    // A read that starts now is after every write, remembered or not.
    const now = fence.position();
    expect(fence.movedSince(['detail:1'], now)).toBe(false);
    expect(fence.movedSince(['detail:10'], now)).toBe(false);
    fence.bump(['list', 'detail:10']);
    expect(fence.movedSince(['detail:10'], now)).toBe(true);
    expect(fence.movedSince(['detail:9'], now)).toBe(false);
  });

  it('a write that names no service fences everything', () => {
    const fence = new WriteFence();
    const before = fence.position();
    fence.bump(undefined);
    expect(fence.movedSince(['detail:1'], before)).toBe(true);
    expect(fence.movedSince(['list'], before)).toBe(true);
    expect(fence.movedSince(['detail:1'], fence.position())).toBe(false);
    expect(fence.size).toBe(0);
  });
});
