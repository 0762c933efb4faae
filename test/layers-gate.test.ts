import type { ErpCall, Send } from '../src/erp/call';
import { ErpAbortedError, ErpClosedError } from '../src/erp/errors';
import { gate } from '../src/erp/layers/gate';
import type { ErpReply } from '../src/erp/types';

/** The wire's front door on its own: what it lets through, and what it refuses before anything is sent. */
function setUp() {
  const pending: Array<{ call: ErpCall; resolve(reply: ErpReply): void }> = [];
  const upstream: Send = (call) => new Promise<ErpReply>((resolve) => pending.push({ call, resolve }));
  const door = gate();
  return { door, send: door.wrap(upstream), pending };
}

const reply = (v: string): ErpReply => ({ header: { status: 0, message: 'ok' }, body: { v } });
const detail = (extra: Partial<ErpCall> = {}): ErpCall => ({ endpoint: 'detail', path: '/add.asp', kind: 'read', cmdkey: '', datas: [{ id: 'ord', val: '1' }], ...extra });
const save: ErpCall = { endpoint: 'process', path: '/chuli.asp', kind: 'write', cmdkey: '__sys_dosave', datas: [{ id: 'ord', val: '1' }] };

it('lets calls through while open, the caller\'s signal with them', async () => {
  const t = setUp();
  const signal = new AbortController().signal;
  const answer = t.send(detail({ signal }));
  expect(t.pending).toHaveLength(1);
  expect(t.pending[0]!.call.signal).toBe(signal);
  t.pending[0]!.resolve(reply('r'));
  await expect(answer).resolves.toEqual(reply('r'));
});

it('refuses every call after close, reads and writes, before anything is sent', async () => {
  const t = setUp();
  t.door.close();
  for (const call of [detail(), save]) {
    const error = (await t.send(call).catch((e: unknown) => e)) as ErpClosedError;
    expect(error).toBeInstanceOf(ErpClosedError);
    expect(error).toEqual(expect.objectContaining({ code: 'ERP_CLIENT_CLOSED', mayHaveReachedErp: false, path: call.path, message: 'ERP client is closed: call not sent' }));
  }
  expect(t.pending).toHaveLength(0);
});

it('a call that passed before close goes on to its answer', async () => {
  const t = setUp();
  const before = t.send(save);
  t.door.close();
  t.pending[0]!.resolve(reply('saved'));
  await expect(before).resolves.toEqual(reply('saved'));
});

it('refuses a caller that already gave up: ERP_ABORTED, not sent, nothing reached the ERP', async () => {
  const t = setUp();
  const error = (await t.send(detail({ signal: AbortSignal.abort() })).catch((e: unknown) => e)) as ErpAbortedError;
  expect(error).toBeInstanceOf(ErpAbortedError);
  expect(error).toEqual(expect.objectContaining({ code: 'ERP_ABORTED', phase: 'unsent', mayHaveReachedErp: false, path: '/add.asp' }));
  expect(t.pending).toHaveLength(0);
});
