import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { cancelOf } from '../erp/abort';
import { MAX_TIMER_MS } from '../erp/expiry';
import type { CallContext } from '../erp/client';
import { parseHandleInput, rejectedInput, type HandleInput, type HandleOutcome, type HandleResult, type UserError } from './handle';
import { InputError } from './input';
import { fieldValues, MappedService, type ServiceField, type ServiceFields } from './model';
import type { SaveRecovery } from './recovery';
import type { AfterSaleRepository } from './repository';

/**
 * Idempotency keys for handleService. The store is an interface so a shared one (Redis, a database) can replace the
 * in-memory one when the subgraph runs as several replicas. One module on purpose (a little over 250 lines): the
 * claim protocol, the stored record, the in-memory store's bounds and the handler that drives them are one rule
 * ("a key saves at most once") and change together.
 */
export type Claim =
  | { kind: 'claimed' }
  /** The first call with this key finished: its payload. */
  | { kind: 'done'; fingerprint: string; result: HandleResult }
  /** The first call with this key is still running: its payload once it finishes. */
  | { kind: 'pending'; fingerprint: string; result: Promise<HandleResult> }
  /** Claimed after an earlier claim with this input expired: its holder may have sent the save (a shared store only). */
  | { kind: 'recovered' };

export interface IdempotencyStore {
  /**
   * Claims `key` for a new call, or hands back what is recorded under it. Rejects with IdempotencyStoreFullError
   * when no more claims can be in flight.
   */
  claim(key: string, fingerprint: string): Promise<Claim>;
  /** Records the payload of the call that claimed `key`; its waiters get `result`. */
  complete(key: string, result: HandleResult): Promise<void>;
  /** The claiming call failed before anything could reach the ERP: free the key; waiters get `error`. */
  release(key: string, error: unknown): Promise<void>;
}

/** Retriable: the first call with this key is still running, and this caller's deadline came first. */
export class IdempotencyKeyInUseError extends Error {
  readonly retryable = true;
  constructor() {
    super('The first call with this idempotencyKey is still running; retry later to get its payload.');
  }
}

/** Retriable: as many keyed calls as the store admits are in flight. */
export class IdempotencyStoreFullError extends Error {
  readonly retryable = true;
  constructor(readonly limit: number) {
    super(`Too many handleService calls with an idempotencyKey are in flight (${limit}); retry later.`);
  }
}

export class IdempotencyConflictError extends InputError {
  constructor() {
    super('idempotencyKey', 'idempotencyKey was already used with different input');
  }
}

export class IdempotencyKeyInvalidError extends InputError {
  constructor() {
    super('idempotencyKey', `idempotencyKey must be ${IDEMPOTENCY_KEY_MIN} to ${IDEMPOTENCY_KEY_MAX} characters`);
  }
}

export const IDEMPOTENCY_KEY_MIN = 1;
export const IDEMPOTENCY_KEY_MAX = 200;

/**
 * What a replay needs and no more. No `erpFields` (the `erpFields` resolver loads the detail when a replay asks for
 * them): they were most of a stored payload. `known` lists the fields kept, so field resolvers answer from them.
 */
export interface StoredRecord {
  outcome: HandleOutcome;
  message: string | null;
  userErrors: UserError[];
  service: { id: string; source: 'list' | 'detail'; known: ServiceField[]; fields: Partial<ServiceFields> } | null;
}

/** `withFields: false` keeps only the service's id: a replay then loads every field it selects. */
export function toRecord(result: HandleResult, withFields = true): StoredRecord {
  const s = result.service;
  return {
    outcome: result.outcome,
    message: result.message,
    userErrors: result.userErrors,
    service: s && (withFields ? { id: s.id, source: s.source, known: [...s.known], fields: fieldValues(s) } : { id: s.id, source: s.source, known: [], fields: {} }),
  };
}

export function fromRecord(record: StoredRecord): HandleResult {
  const s = record.service;
  return {
    outcome: record.outcome,
    message: record.message,
    userErrors: record.userErrors,
    service: s && new MappedService(s.id, s.source, s.fields, s.known),
  };
}

export interface MemoryIdempotencyStoreOptions {
  /** How long a completed key is kept (ZB_IDEMPOTENCY_TTL_MS). */
  ttlMs: number;
  /** Completed keys kept at most (ZB_IDEMPOTENCY_MAX_KEYS). */
  maxKeys: number;
  /** Bytes of completed entries kept at most (ZB_IDEMPOTENCY_MAX_BYTES); 16 MiB by default. */
  maxBytes?: number;
  /** Claims in flight at most (ZB_MAX_INFLIGHT_REQUESTS); 128 by default. */
  maxPending?: number;
}

interface Pending {
  fingerprint: string;
  result: Promise<HandleResult>;
  resolve(result: HandleResult): void;
  reject(error: unknown): void;
}

interface Completed {
  fingerprint: string;
  /** The StoredRecord, serialised: what is counted is what is held. */
  record: string;
}

const sizeOf = (key: string, entry: Completed) => Buffer.byteLength(key) + entry.fingerprint.length + Buffer.byteLength(entry.record);

/**
 * Keys in this process. Claims in flight live in their own map, never evicted (evicting one let its retry save a
 * second time) and bounded in number. Completed entries live in an LRU bounded in keys and in bytes (an entry is
 * sized as the UTF-8 bytes of its key, fingerprint and serialised record) and expire after `ttlMs`; when a bound is
 * hit the least recently used completed keys are dropped, and a repeat of a dropped key saves again, as after the TTL.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly pending = new Map<string, Pending>();
  private readonly completed: LRUCache<string, Completed>;
  private readonly maxBytes: number;
  private readonly maxPending: number;

  constructor(options: MemoryIdempotencyStoreOptions) {
    this.maxBytes = options.maxBytes ?? 16 * 1024 * 1024;
    this.maxPending = options.maxPending ?? 128;
    this.completed = new LRUCache({ max: options.maxKeys, maxSize: this.maxBytes, ttl: options.ttlMs, sizeCalculation: (entry, key) => sizeOf(key, entry) });
  }

  /** Bytes of completed entries held, as counted against `maxBytes`. */
  get calculatedSize(): number {
    return this.completed.calculatedSize;
  }

  get completedCount(): number {
    return this.completed.size;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  claim(key: string, fingerprint: string): Promise<Claim> {
    const pending = this.pending.get(key);
    if (pending) return Promise.resolve({ kind: 'pending', fingerprint: pending.fingerprint, result: pending.result });
    const done = this.completed.get(key);
    if (done) return Promise.resolve({ kind: 'done', fingerprint: done.fingerprint, result: fromRecord(JSON.parse(done.record) as StoredRecord) });
    if (this.pending.size >= this.maxPending) return Promise.reject(new IdempotencyStoreFullError(this.maxPending));
    let resolve!: (r: HandleResult) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<HandleResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Waiters attach their own handlers; this keeps a release with no waiters from being an unhandled rejection.
    result.catch(() => undefined);
    this.pending.set(key, { fingerprint, result, resolve, reject });
    return Promise.resolve({ kind: 'claimed' });
  }

  complete(key: string, result: HandleResult): Promise<void> {
    const pending = this.pending.get(key);
    if (!pending) return Promise.resolve();
    this.pending.delete(key);
    try {
      this.remember(key, pending.fingerprint, result);
    } finally {
      pending.resolve(result);
    }
    return Promise.resolve();
  }

  release(key: string, error: unknown): Promise<void> {
    const pending = this.pending.get(key);
    if (pending) {
      this.pending.delete(key);
      pending.reject(error);
    }
    return Promise.resolve();
  }

  private remember(key: string, fingerprint: string, result: HandleResult): void {
    let entry: Completed = { fingerprint, record: JSON.stringify(toRecord(result)) };
    // A service too large to keep whole is kept as its id (a replay reloads it) rather than dropped, which would let
    // a repeat save again. Only an entry whose messages alone exceed maxBytes is not kept (the LRU refuses it).
    if (sizeOf(key, entry) > this.maxBytes) entry = { fingerprint, record: JSON.stringify(toRecord(result, false)) };
    this.completed.set(key, entry);
  }
}

export function fingerprint(input: HandleInput): string {
  const { id, assigneeId, note, salespersonId, result } = input;
  return createHash('sha256').update(JSON.stringify([id, assigneeId, note, salespersonId, result])).digest('hex');
}

/**
 * Keys belong to the user (the gateway's `principal`), so a retry after a session token renewal finds its key; without
 * a principal, to the ERP identity. Users never see each other's payloads. JSON keeps the parts from running together.
 */
export function scopedKey(ctx: CallContext, idempotencyKey: string): string {
  return JSON.stringify(ctx.principal ? ['user', ctx.principal, idempotencyKey] : ['session', ctx.auth.identity, idempotencyKey]);
}

/**
 * The first call's payload, or IdempotencyKeyInUseError once this caller's deadline passes or its request is aborted:
 * a waiter never outlives its request. Settles exactly once and leaves no timer or listener behind.
 */
export function waitForFirst(result: Promise<HandleResult>, ctx: Pick<CallContext, 'deadline' | 'signal'>): Promise<HandleResult> {
  const { deadline, signal } = ctx;
  if (signal?.aborted || (deadline !== undefined && deadline <= Date.now())) return Promise.reject(new IdempotencyKeyInUseError());
  if (deadline === undefined && !signal) return result;
  return new Promise<HandleResult>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    // The request's signal is an AbortSignal or its deadline's Cancel: watched through the one follower (abort.ts).
    const cancel = signal && cancelOf(signal);
    const settle = (finish: () => void) => {
      if (timer) clearTimeout(timer);
      cancel?.unwatch(giveUp);
      finish();
    };
    const giveUp = () => settle(() => reject(new IdempotencyKeyInUseError()));
    if (deadline !== undefined) timer = setTimeout(giveUp, Math.min(deadline - Date.now(), MAX_TIMER_MS));
    cancel?.watch(giveUp);
    result.then(
      (r) => settle(() => resolve(r)),
      (e: unknown) => settle(() => reject(e)),
    );
  });
}

/** handleService with optional idempotency keys. */
export class IdempotentHandler {
  constructor(
    private readonly repository: Pick<AfterSaleRepository, 'handle'>,
    private readonly store: IdempotencyStore,
    /** For 'recovered' claims: answers from the record when it already shows the input (recovery.ts). */
    private readonly recovery?: Pick<SaveRecovery, 'answer'>,
  ) {}

  async handle(ctx: CallContext, input: HandleInput, idempotencyKey?: string | null): Promise<HandleResult> {
    const keyed = idempotencyKey !== undefined && idempotencyKey !== null;
    if (keyed && (idempotencyKey.length < IDEMPOTENCY_KEY_MIN || idempotencyKey.length > IDEMPOTENCY_KEY_MAX)) throw new IdempotencyKeyInvalidError();
    // Validation comes before the claim: input we refuse claims nothing, so its corrected retry may use the same key.
    const parsed = parseHandleInput(input);
    if (parsed.kind === 'invalid') return rejectedInput(parsed.userErrors);
    if (!keyed) return this.repository.handle(ctx, parsed.input);

    const key = scopedKey(ctx, idempotencyKey);
    // Of the input as sent: a repeat that differs from the first call only in whitespace is a different input.
    const print = fingerprint(input);
    const claim = await this.store.claim(key, print);
    if (claim.kind === 'done' || claim.kind === 'pending') {
      if (claim.fingerprint !== print) throw new IdempotencyConflictError();
      return claim.kind === 'done' ? claim.result : waitForFirst(claim.result, ctx);
    }
    if (claim.kind === 'recovered' && this.recovery) {
      let answer: HandleResult | undefined;
      try {
        answer = await this.recovery.answer(ctx, parsed.input);
      } catch (e) {
        // The re-read failed: nothing was sent; the claim stays recoverable for the retry.
        await this.store.release(key, e);
        throw e;
      }
      if (answer) {
        await this.store.complete(key, answer);
        return answer;
      }
    }
    let result: HandleResult;
    try {
      result = await this.repository.handle(ctx, parsed.input);
    } catch (e) {
      // Only errors that never reached the ERP get here (an unknown outcome is a result): the key may be used again.
      await this.store.release(key, e);
      throw e;
    }
    // Outside the try: a save happened, so a failing `complete` must not free the key for a second one.
    await this.store.complete(key, result);
    return result;
  }
}
