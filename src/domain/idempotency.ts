import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { CallContext } from '../erp/client';
import type { HandleInput, HandleResult } from './handle';
import type { AfterSaleRepository } from './repository';

/**
 * Idempotency keys for handleService. The store is an interface so a shared one (Redis, a database) can replace the
 * in-memory one when the subgraph runs as several replicas.
 */
export type Claim = { kind: 'claimed' } | { kind: 'existing'; fingerprint: string; result: Promise<HandleResult> };

export interface IdempotencyStore {
  /** Claims `key` for a new call, or hands back what is recorded under it (possibly still in flight). */
  claim(key: string, fingerprint: string): Promise<Claim>;
  /** Records the payload of the call that claimed `key`. */
  complete(key: string, result: HandleResult): Promise<void>;
  /** The claiming call failed before anything could reach the ERP: free the key; waiters get `error`. */
  release(key: string, error: unknown): Promise<void>;
}

interface MemoryEntry {
  fingerprint: string;
  result: Promise<HandleResult>;
  resolve(result: HandleResult): void;
  reject(error: unknown): void;
}

/** Bounded (LRU) and expiring (TTL) keys in this process. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries: LRUCache<string, MemoryEntry>;

  constructor(options: { ttlMs: number; maxKeys: number }) {
    this.entries = new LRUCache({ max: options.maxKeys, ttl: options.ttlMs });
  }

  claim(key: string, fingerprint: string): Promise<Claim> {
    const existing = this.entries.get(key);
    if (existing) return Promise.resolve({ kind: 'existing', fingerprint: existing.fingerprint, result: existing.result });
    let resolve!: (r: HandleResult) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<HandleResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Waiters attach their own handlers; this keeps a release with no waiters from being an unhandled rejection.
    result.catch(() => undefined);
    this.entries.set(key, { fingerprint, result, resolve, reject });
    return Promise.resolve({ kind: 'claimed' });
  }

  complete(key: string, result: HandleResult): Promise<void> {
    this.entries.get(key)?.resolve(result);
    return Promise.resolve();
  }

  release(key: string, error: unknown): Promise<void> {
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      entry.reject(error);
    }
    return Promise.resolve();
  }
}

export class IdempotencyConflictError extends Error {
  constructor() {
    super('idempotencyKey was already used with different input');
  }
}

export function fingerprint(input: HandleInput): string {
  const { id, assigneeId, note, salespersonId, result } = input;
  return createHash('sha256').update(JSON.stringify([id, assigneeId, note, salespersonId, result])).digest('hex');
}

/** handleService with optional idempotency keys, scoped per ERP identity so users never see each other's payloads. */
export class IdempotentHandler {
  constructor(
    private readonly repository: AfterSaleRepository,
    private readonly store: IdempotencyStore,
  ) {}

  async handle(ctx: CallContext, input: HandleInput, idempotencyKey?: string | null): Promise<HandleResult> {
    if (!idempotencyKey) return this.repository.handle(ctx, input);
    const key = `${ctx.auth.identity}\u0000${idempotencyKey}`;
    const print = fingerprint(input);
    const claim = await this.store.claim(key, print);
    if (claim.kind === 'existing') {
      if (claim.fingerprint !== print) throw new IdempotencyConflictError();
      return claim.result;
    }
    try {
      const result = await this.repository.handle(ctx, input);
      await this.store.complete(key, result);
      return result;
    } catch (e) {
      // Only errors that never reached the ERP get here (an unknown outcome is a result): the key may be used again.
      await this.store.release(key, e);
      throw e;
    }
  }
}
