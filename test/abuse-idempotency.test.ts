import { graphql } from 'graphql';
import {
  IdempotencyKeyInUseError,
  IdempotencyStoreFullError,
  IdempotentHandler,
  MemoryIdempotencyStore,
  fromRecord,
  scopedKey,
  toRecord,
  type Claim,
} from '../src/domain/idempotency';
import type { HandleInput, HandleResult, ValidHandleInput } from '../src/domain/handle';
import { fieldValues, MappedService, type AfterSaleService, type RawField, type ServiceField, type ServiceFields } from '../src/domain/model';
import type { SessionSource } from '../src/erp/call';
import type { CallContext } from '../src/erp/client';
import type { GraphQLContext } from '../src/graphql/context';
import { buildSchema } from '../src/graphql/schema';
import { formatError } from '../src/server/errors';
import { eventually, postJson, SIM_PASSWORD, SIM_USER, startStack, until, type TestStack } from './helpers';

/** Abuse of handleService's idempotency keys: memory, in-flight claims, key scope, and what may claim a key. */

// ---- unit fixtures --------------------------------------------------------------------------------------------------

const session = (identity: string): SessionSource => ({ identity, token: () => Promise.resolve(`token-${identity}`) });
const ctxOf = (identity: string, extra: Partial<CallContext> = {}): CallContext => ({ auth: session(identity), ...extra });

/** A service as a detail re-read returns it, with ~14 KB of erpFields like a real ERP form. */
function bigService(i: number, over: Partial<ServiceFields> = {}): AfterSaleService {
  const fields: Partial<ServiceFields> = {
    code: `SH-${i}`,
    title: `售后 ${i}`,
    customer: { id: '5', name: '北京科技有限公司' },
    urgency: { id: '2', name: '紧急' },
    fee: 12.5,
    content: '设备异响，'.repeat(40),
    handlingContent: `note ${i}`,
    handlingResult: '已解决',
    remark: null,
    ...over,
  };
  const erpFields: RawField[] = Array.from({ length: 36 }, (_, k) => ({
    id: `f${k}`, caption: `字段${k}`, group: 'base', type: 'text', text: `${i}-${k} ${'售后服务记录'.repeat(20)}`, value: String(k),
  }));
  return new MappedService(String(1000 + (i % 50)), 'detail', fields, Object.keys(fields) as ServiceField[], erpFields);
}
/** What a service model holds, as plain data: what a replay must give back. */
const plain = (s: AfterSaleService) => ({ id: s.id, source: s.source, known: [...s.known].sort(), fields: fieldValues(s), erpFields: s.erpFields() });
const saved = (i: number): HandleResult => ({ outcome: 'SAVED', message: '保存成功！', userErrors: [], service: bigService(i) });
const valid = (over: Partial<HandleInput> = {}): HandleInput => ({ id: '1010', assigneeId: '2', note: 'n', salespersonId: '5', result: '已解决', ...over });
const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

/** A repository whose saves finish only when the test says so. */
class HeldRepository {
  readonly inputs: ValidHandleInput[] = [];
  private readonly finishers: Array<(r: HandleResult) => void> = [];
  private readonly failers: Array<(e: unknown) => void> = [];
  handle(_ctx: CallContext, input: ValidHandleInput): Promise<HandleResult> {
    this.inputs.push(input);
    return new Promise<HandleResult>((resolve, reject) => {
      this.finishers.push(resolve);
      this.failers.push(reject);
    });
  }
  finish(result: HandleResult): void {
    this.failers.shift();
    this.finishers.shift()!(result);
  }
  fail(error: unknown): void {
    this.finishers.shift();
    this.failers.shift()!(error);
  }
}

/** Resolves with the repository's result at once. */
const instantRepository = (result: (input: HandleInput) => HandleResult) => {
  const inputs: HandleInput[] = [];
  return { inputs, handle: (_ctx: CallContext, input: ValidHandleInput) => (inputs.push(input), Promise.resolve(result(input))) };
};

const store = (over: Partial<ConstructorParameters<typeof MemoryIdempotencyStore>[0]> = {}) =>
  new MemoryIdempotencyStore({ ttlMs: 60_000, maxKeys: 100_000, maxBytes: 16 * 1024 * 1024, maxPending: 128, ...over });

async function claimAndComplete(s: MemoryIdempotencyStore, key: string, result: HandleResult): Promise<void> {
  expect((await s.claim(key, 'f'.repeat(64))).kind).toBe('claimed');
  await s.complete(key, result);
}

// ---- HTTP fixtures --------------------------------------------------------------------------------------------------

let t: TestStack;
beforeAll(async () => {
  // Few keys, so that any key the old store kept for a flood would have pushed out the one in flight.
  t = await startStack({ env: { ZB_IDEMPOTENCY_MAX_KEYS: '5', ZB_TRUST_USER_HEADER: 'true' } });
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
const input = (over: Record<string, unknown> = {}) => ({ id: '1010', assigneeId: '2', note: `abuse note ${++n}`, salespersonId: '5', result: '已解决', ...over });
const processCallsFor = (s: TestStack, note: string) => s.sim.calls.of('process').filter((c) => c.datas.info1 === note).length;

async function inBatches(count: number, size: number, each: (i: number) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < count; i += size) await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, k) => each(i + k)));
}

async function graphqlInFlight(s: TestStack): Promise<number> {
  return (await s.app.metrics.graphqlInFlight.get()).values[0]?.value ?? 0;
}


async function userToken(user: string, password: string, serial: string, simUrl = t.sim.url): Promise<string> {
  const r = await postJson(`${simUrl}/webapi/v3/ov1/login`, { datas: [{ id: 'user', val: `txt:${user}` }, { id: 'password', val: `txt:${password}` }, { id: 'serialnum', val: `txt:${serial}` }] });
  return (r.json as { header: { session: string } }).header.session;
}

// ---- 1 ----------------------------------------------------------------------------------------------------------------

describe('The idempotency store is bounded by key count, not bytes', () => {
  it('keeps thousands of ~14 KB payloads within maxBytes, as counted by its own calculatedSize', async () => {
    const maxBytes = 1024 * 1024;
    const s = store({ maxBytes });
    expect(jsonBytes(bigService(0).erpFields())).toBeGreaterThan(12_000);
    let peak = 0;
    for (let i = 0; i < 5000; i++) {
      await claimAndComplete(s, `k${i}`, saved(i));
      peak = Math.max(peak, s.calculatedSize);
    }
    expect(peak).toBeLessThanOrEqual(maxBytes);
    // Bytes, not keys, are what bound it here: far fewer than 5000 fit, and the newest are the ones kept.
    expect(s.completedCount).toBeLessThan(5000);
    expect((await s.claim('k4999', 'f'.repeat(64))).kind).toBe('done');
    expect((await s.claim('k0', 'f'.repeat(64))).kind).toBe('claimed');
  });

  it('sizes an entry as the UTF-8 bytes of its serialised record, fingerprint and key, without erpFields', async () => {
    const s = store();
    const key = scopedKey(ctxOf('u'), '钥匙-1');
    const result = saved(7);
    await claimAndComplete(s, key, result);
    const record = toRecord(result);
    expect(record.service).not.toHaveProperty('erpFields');
    expect(s.calculatedSize).toBe(Buffer.byteLength(JSON.stringify(record)) + 64 + Buffer.byteLength(key));
    // The full payload, erpFields included, is what the old store held per key.
    expect(s.calculatedSize).toBeLessThan(jsonBytes({ ...result, service: plain(result.service!) }) / 3);
  });

  it('a replay rebuilds the model: `known` answers field resolvers from the stored fields; erpFields are left to load', async () => {
    const s = store();
    const result = saved(3);
    await claimAndComplete(s, 'k', result);
    const claim: Claim = await s.claim('k', 'f'.repeat(64));
    if (claim.kind !== 'done') throw new Error(`expected done, got ${claim.kind}`);
    const { service: replayed, ...replayedRest } = claim.result;
    const { service: original, ...originalRest } = result;
    expect(replayedRest).toEqual(originalRest);
    expect(plain(replayed!)).toEqual({ ...plain(original!), erpFields: undefined });
    expect(replayed!.erpFields()).toBeUndefined();
    expect([...replayed!.known].sort()).toEqual([...original!.known].sort());
    expect(plain(fromRecord(toRecord(result)).service!)).toEqual(plain(replayed!));
  });

  it('a service too large to keep whole is kept as its id, so a repeat still does not save again', async () => {
    const maxBytes = 64 * 1024;
    const s = store({ maxBytes });
    const huge: HandleResult = { ...saved(1), service: bigService(1, { content: '长'.repeat(30_000) }) };
    await claimAndComplete(s, 'huge', huge);
    expect(s.calculatedSize).toBeLessThanOrEqual(maxBytes);
    const claim = await s.claim('huge', 'f'.repeat(64));
    if (claim.kind !== 'done') throw new Error(`expected done, got ${claim.kind}`);
    expect(claim.result.outcome).toBe('SAVED');
    expect(plain(claim.result.service!)).toEqual({ id: huge.service!.id, source: 'detail', known: [], fields: {}, erpFields: undefined });
  });

  it('(d) 2,000 distinct keyed saves keep their payloads within the default 16 MiB', async () => {
    const maxBytes = 16 * 1024 * 1024;
    const s = store({ maxBytes, maxKeys: 10_000 });
    let i = 0;
    const handler = new IdempotentHandler(instantRepository(() => saved(i++)), s);
    let peak = 0;
    for (let k = 0; k < 2000; k++) {
      await handler.handle(ctxOf('u'), valid({ note: `n${k}` }), `key-${k}`);
      peak = Math.max(peak, s.calculatedSize);
    }
    expect(peak).toBeLessThanOrEqual(maxBytes);
    // Compact records: all 2,000 fit (the full payloads, ~2000 x 17 KB, would not have).
    expect(s.completedCount).toBe(2000);
    expect(s.pendingCount).toBe(0);
  });

  it('over HTTP: a replay answers stored fields with no ERP call, and loads erpFields only when they are selected', async () => {
    const i = { ...input(), idempotencyKey: 'replay-fields' };
    const first = await t.gql<Payload>(HANDLE, { input: i });
    expect(first.data!.handleService.outcome).toBe('SAVED');
    t.sim.calls.clear();
    const again = await t.gql<Payload>(HANDLE, { input: i });
    expect(again.data).toEqual(first.data);
    expect(t.sim.calls.count()).toBe(0);

    const withErp = `mutation H($input: HandleServiceInput!) { handleService(input: $input) { outcome service { id handlingContent erpFields { key text } } } }`;
    type ErpPayload = { handleService: { outcome: string; service: { id: string; handlingContent: string; erpFields: Array<{ key: string; text: string }> } } };
    const replay = await t.gql<ErpPayload>(withErp, { input: i });
    expect(replay.data!.handleService.service.handlingContent).toBe(i.note);
    expect(replay.data!.handleService.service.erpFields.length).toBeGreaterThan(0);
    expect(t.sim.calls.all().map((c) => c.endpoint)).toEqual(['detail']);
  });
});

// ---- 2 ----------------------------------------------------------------------------------------------------------------

describe('Evicting an in-flight key saves twice and leaks a request slot forever', () => {
  it('a claim in flight is never evicted by a flood of other keys', async () => {
    const s = store({ maxKeys: 5, maxBytes: 64 * 1024 });
    expect((await s.claim('held', 'p')).kind).toBe('claimed');
    for (let i = 0; i < 3000; i++) await claimAndComplete(s, `flood-${i}`, saved(i));
    const again = await s.claim('held', 'p');
    expect(again.kind).toBe('pending');
    await s.complete('held', saved(-1));
    if (again.kind !== 'pending') throw new Error('unreachable');
    expect((await again.result).service!.get('handlingContent')).toBe('note -1');
    expect(s.pendingCount).toBe(0);
    expect((await s.claim('held', 'p')).kind).toBe('done');
  });

  it('a claim when maxPending claims are in flight is refused with a typed, retriable error', async () => {
    const s = store({ maxPending: 2 });
    await s.claim('a', 'p');
    await s.claim('b', 'p');
    const refused = s.claim('c', 'p');
    await expect(refused).rejects.toBeInstanceOf(IdempotencyStoreFullError);
    await expect(refused).rejects.toMatchObject({ retryable: true, limit: 2 });
    // Waiting on a key in flight is not a new claim, and a finished claim frees its place.
    expect((await s.claim('a', 'p')).kind).toBe('pending');
    await s.release('a', new Error('never sent'));
    expect((await s.claim('c', 'p')).kind).toBe('claimed');
  });

  it('a waiter whose deadline passes gets IdempotencyKeyInUseError; the first call still saves once and the store settles', async () => {
    const repo = new HeldRepository();
    const s = store();
    const handler = new IdempotentHandler(repo, s);
    const first = handler.handle(ctxOf('u'), valid(), 'k');
    await until(() => repo.inputs.length === 1, 'the first save started');
    const waiter = handler.handle(ctxOf('u', { deadline: Date.now() + 20 }), valid(), 'k');
    await expect(waiter).rejects.toBeInstanceOf(IdempotencyKeyInUseError);
    await expect(waiter).rejects.toMatchObject({ retryable: true });
    // A deadline already gone, and an aborted request, give up at once.
    await expect(handler.handle(ctxOf('u', { deadline: Date.now() - 1 }), valid(), 'k')).rejects.toBeInstanceOf(IdempotencyKeyInUseError);
    const abort = new AbortController();
    const aborted = handler.handle(ctxOf('u', { signal: abort.signal, deadline: Date.now() + 60_000 }), valid(), 'k');
    abort.abort();
    await expect(aborted).rejects.toBeInstanceOf(IdempotencyKeyInUseError);
    expect(s.pendingCount).toBe(1);

    repo.finish(saved(1));
    const result = await first;
    expect(s.pendingCount).toBe(0);
    expect(await handler.handle(ctxOf('u', { deadline: Date.now() + 60_000 }), valid(), 'k')).toEqual(fromRecord(toRecord(result)));
    expect(repo.inputs).toHaveLength(1);
  });

  it('a first call that fails before reaching the ERP frees the key; its waiters get that error', async () => {
    const repo = new HeldRepository();
    const s = store();
    const handler = new IdempotentHandler(repo, s);
    const first = handler.handle(ctxOf('u'), valid(), 'k');
    await until(() => repo.inputs.length === 1, 'the first save started');
    const waiter = handler.handle(ctxOf('u', { deadline: Date.now() + 60_000 }), valid(), 'k');
    await Promise.resolve();
    repo.fail(new Error('connect refused'));
    await expect(first).rejects.toThrow('connect refused');
    await expect(waiter).rejects.toThrow('connect refused');
    expect(s.pendingCount).toBe(0);
    expect((await s.claim(scopedKey(ctxOf('u'), 'k'), 'p')).kind).toBe('claimed');
  });

  it('(a) a flood of rejected and other keys while a save is held: the retry gets the first payload, one save, no slot leaked', async () => {
    const held = { ...input(), idempotencyKey: 'held-key' };
    // The held save's reply waits for release(), not for a latency the flood would have to beat (deterministic).
    const hold = t.sim.faults.hold({ endpoint: 'process' });
    let heldDone = false;
    const first = t.gql<Payload>(HANDLE, { input: held }).finally(() => {
      heldDone = true;
    });
    await until(() => hold.held === 1, 'the held save reached the ERP');

    const rejected: string[] = [];
    await inBatches(100, 10, async (i) => {
      const r = await t.gql<Payload>(HANDLE, { input: { ...input({ note: '' }), idempotencyKey: `flood-${i}` } });
      rejected.push(r.data!.handleService.outcome);
    });
    expect(new Set(rejected)).toEqual(new Set(['REJECTED']));
    // One at a time: concurrent saves of one service would overwrite each other and rightly read as UNKNOWN.
    await inBatches(20, 1, async (i) => {
      const r = await t.gql<Payload>(HANDLE, { input: { ...input({ id: '1011' }), idempotencyKey: `other-${i}` } });
      expect(r.data!.handleService.outcome).toBe('SAVED');
    });
    expect(heldDone).toBe(false);

    const retry = t.gql<Payload>(HANDLE, { input: held });
    // The retry joins the claim in flight (it sends nothing); then the ERP answers the held save.
    await eventually(async () => (await graphqlInFlight(t)) === 2, 'the retry waits on the held claim');
    expect(t.sim.calls.count('process')).toBe(21);
    hold.release();
    const original = await first;
    expect(heldDone).toBe(true);
    const retried = await retry;
    expect(original.data!.handleService.outcome).toBe('SAVED');
    expect(retried.data).toEqual(original.data);
    expect(processCallsFor(t, held.note)).toBe(1);
    expect(t.sim.calls.count('process')).toBe(21);
    await eventually(async () => (await graphqlInFlight(t)) === 0, 'zb_graphql_in_flight back to 0');
  });

  it('a retry whose request deadline passes while the first call runs is IDEMPOTENCY_KEY_IN_USE, retryable', async () => {
    const s = await startStack({ env: { ZB_REQUEST_DEADLINE_MS: '300' } });
    try {
      const held = { ...input(), idempotencyKey: 'slow-key' };
      s.sim.faults.configure({ latencyMs: 2500 });
      const first = s.gql<Payload>(HANDLE, { input: held });
      await until(() => s.sim.calls.count('process') === 1, 'the held save reached the ERP');
      s.sim.faults.configure({ latencyMs: 0 });
      const early = await s.gql<Payload>(HANDLE, { input: held });
      expect(early.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'IDEMPOTENCY_KEY_IN_USE', retryable: true }));
      const original = await first;
      const late = await s.gql<Payload>(HANDLE, { input: held });
      expect(late.data).toEqual(original.data);
      expect(processCallsFor(s, held.note)).toBe(1);
      await eventually(async () => (await graphqlInFlight(s)) === 0, 'zb_graphql_in_flight back to 0');
    } finally {
      await s.close();
    }
  });

  it('a full store thrown by the resolver leaves as IDEMPOTENCY_STORE_FULL, retryable', async () => {
    const context = {
      requestId: 'r',
      services: { handle: () => Promise.reject(new IdempotencyStoreFullError(128)) },
    } as unknown as GraphQLContext;
    const r = await graphql({ schema: buildSchema(), source: HANDLE, variableValues: { input: { ...input(), idempotencyKey: 'k' } }, contextValue: context });
    // The resolver throws the domain's error as it is; the server's formatError translates it.
    const [error] = r.errors ?? [];
    expect(formatError(error!.toJSON(), error).extensions).toEqual(expect.objectContaining({ code: 'IDEMPOTENCY_STORE_FULL', retryable: true }));
  });
});

// ---- 3 ----------------------------------------------------------------------------------------------------------------

describe('Idempotency is scoped to the session token: the same user retrying the same key after a token renewal saves twice', () => {
  it('keys are scoped to the principal when there is one, else to the session identity; the parts cannot run together', () => {
    expect(scopedKey(ctxOf('token-hash-1', { principal: 'erp-user:zhangwei' }), 'k')).toBe(scopedKey(ctxOf('token-hash-2', { principal: 'erp-user:zhangwei' }), 'k'));
    expect(scopedKey(ctxOf('h', { principal: 'erp-user:zhangwei' }), 'k')).not.toBe(scopedKey(ctxOf('h', { principal: 'erp-user:lina' }), 'k'));
    expect(scopedKey(ctxOf('token-hash-1'), 'k')).not.toBe(scopedKey(ctxOf('token-hash-2'), 'k'));
    expect(scopedKey(ctxOf('h', { principal: 'a' }), 'b\u0000c')).not.toBe(scopedKey(ctxOf('h', { principal: 'a\u0000b' }), 'c'));
    expect(scopedKey(ctxOf('x'), 'k')).not.toBe(scopedKey(ctxOf('y', { principal: 'x' }), 'k'));
  });

  it('(b) the same key and x-zb-user with two session tokens of the same user: one save, the first payload', async () => {
    // The same serial as the service account: a second device would end the account's token.
    const token1 = await userToken(SIM_USER, SIM_PASSWORD, 'test-suite');
    const token2 = await userToken(SIM_USER, SIM_PASSWORD, 'test-suite');
    expect(token2).not.toBe(token1);
    t.sim.calls.clear();
    const i = { ...input(), idempotencyKey: 'renewed-token-key' };
    const first = await t.gql<Payload>(HANDLE, { input: i }, { 'x-zb-session': token1, 'x-zb-user': SIM_USER });
    const again = await t.gql<Payload>(HANDLE, { input: i }, { 'x-zb-session': token2, 'x-zb-user': SIM_USER });
    expect(first.data!.handleService.outcome).toBe('SAVED');
    expect(again.data).toEqual(first.data);
    expect(t.sim.calls.count('process')).toBe(1);
    expect(t.sim.calls.of('process')[0]!.session).toBe(token1);
  });

  it('x-zb-user is ignored unless ZB_TRUST_USER_HEADER: another token naming the same user gets no replay', async () => {
    const s = await startStack();
    try {
      const token1 = await userToken(SIM_USER, SIM_PASSWORD, 'test-suite', s.sim.url);
      const token2 = await userToken(SIM_USER, SIM_PASSWORD, 'test-suite', s.sim.url);
      const i = { ...input(), idempotencyKey: 'untrusted-user-header' };
      const first = await s.gql<Payload>(HANDLE, { input: i }, { 'x-zb-session': token1, 'x-zb-user': SIM_USER });
      const second = await s.gql<Payload>(HANDLE, { input: i }, { 'x-zb-session': token2, 'x-zb-user': SIM_USER });
      expect([first.data?.handleService.outcome, second.data?.handleService.outcome]).toEqual(['SAVED', 'SAVED']);
      // Scoped to each token: two saves, exactly as two different callers.
      expect(s.sim.calls.of('process').map((c) => c.session)).toEqual([token1, token2]);
    } finally {
      await s.close();
    }
  });
});

// ---- 4 ----------------------------------------------------------------------------------------------------------------

describe('only input that passed validation claims a key', () => {
  it('a rejected-by-validation call returns REJECTED with userErrors and claims nothing', async () => {
    const s = store();
    const repo = instantRepository(() => saved(1));
    const handler = new IdempotentHandler(repo, s);
    const r = await handler.handle(ctxOf('u'), valid({ note: '' }), 'k');
    expect(r).toEqual({ outcome: 'REJECTED', message: null, userErrors: [expect.objectContaining({ field: 'note', code: 'REQUIRED' })], service: null });
    expect(s.pendingCount + s.completedCount).toBe(0);
    expect(repo.inputs).toHaveLength(0);
    expect((await handler.handle(ctxOf('u'), valid({ note: 'fixed' }), 'k')).outcome).toBe('SAVED');
    expect(repo.inputs).toHaveLength(1);
  });

  it('(c) invalid input with key K, then the corrected input with key K: SAVED, one process call', async () => {
    const key = 'fix-and-retry';
    const bad = await t.gql<Payload>(HANDLE, { input: { ...input({ result: '好'.repeat(51) }), idempotencyKey: key } });
    expect(bad.data!.handleService).toEqual(expect.objectContaining({ outcome: 'REJECTED', userErrors: [expect.objectContaining({ field: 'result', code: 'TOO_LONG' })] }));
    expect(t.sim.calls.count()).toBe(0);
    const fixed = { ...input(), idempotencyKey: key };
    const good = await t.gql<Payload>(HANDLE, { input: fixed });
    expect(good.errors).toBeUndefined();
    expect(good.data!.handleService.outcome).toBe('SAVED');
    expect(t.sim.calls.count('process')).toBe(1);
    const repeat = await t.gql<Payload>(HANDLE, { input: fixed });
    expect(repeat.data).toEqual(good.data);
    expect(t.sim.calls.count('process')).toBe(1);
  });

  it.each([['empty', ''], ['201 characters', 'k'.repeat(201)]])('an idempotencyKey that is %s is BAD_USER_INPUT on idempotencyKey, with no ERP call', async (_what, key) => {
    const r = await t.gql<Payload>(HANDLE, { input: { ...input(), idempotencyKey: key } });
    expect(r.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'idempotencyKey' }));
    expect(t.sim.calls.count()).toBe(0);
  });
});
