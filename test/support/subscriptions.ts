import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { ErpBusyError, ErpSessionError } from '../../src/erp/errors';

/** The ERP's own text, which must never reach a subscriber (only its public translation). */
export const ERP_TEXT = "ERP session: Microsoft OLE DB Provider for SQL Server: Incorrect syntax near 'tousu'";

export interface Tick {
  n: number;
  label?: string;
  big?: string;
}

/**
 * A subscription's source, driven by the test: push() an event and the transport must deliver it. Records what the
 * transport does with it: how many events it pulled, whether a next() is outstanding, whether it was returned.
 */
export class TestSource implements AsyncIterableIterator<Tick> {
  private readonly buffer: Tick[] = [];
  private waiting: { resolve: (r: IteratorResult<Tick>) => void; reject: (e: unknown) => void } | undefined;
  private over = false;
  private failure: unknown;
  pulled = 0;
  returned = false;

  constructor(
    readonly args: Record<string, unknown>,
    readonly context: unknown,
  ) {}

  get buffered(): number {
    return this.buffer.length;
  }

  /** A next() call is waiting for an event. */
  get nextPending(): boolean {
    return this.waiting !== undefined;
  }

  push(tick: Tick): void {
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      this.pulled++;
      resolve({ done: false, value: tick });
    } else this.buffer.push(tick);
  }

  /** The source has no more events: the transport must complete the subscription. */
  end(): void {
    this.over = true;
    this.settle();
  }

  /** The source fails (as the feed does on a slow consumer's overflow or a refused session). */
  fail(error: unknown): void {
    this.failure = error;
    this.settle();
  }

  next(): Promise<IteratorResult<Tick>> {
    const tick = this.buffer.shift();
    if (tick) {
      this.pulled++;
      return Promise.resolve({ done: false, value: tick });
    }
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      this.over = true;
      return Promise.reject(failure);
    }
    if (this.over) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<Tick>> {
    this.returned = true;
    this.over = true;
    this.buffer.length = 0;
    this.settle();
    return Promise.resolve({ done: true, value: undefined });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private settle(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    this.waiting = undefined;
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      this.over = true;
      waiting.reject(failure);
    } else if (this.over) waiting.resolve({ done: true, value: undefined });
  }
}

/** Every source the schema's subscription field made, in order. */
export class Sources {
  readonly list: TestSource[] = [];

  get last(): TestSource {
    const source = this.list[this.list.length - 1];
    if (!source) throw new Error('no subscription source yet');
    return source;
  }
}

/**
 * A plain schema with a subscription driven by test sources. `ticks(label: "refuse")` fails when it subscribes, as
 * the feed does for a refused session; `Tick.secret` always throws an internal error, `Tick.erp` an ERP error.
 */
export function testSchema(sources: Sources): GraphQLSchema {
  return makeExecutableSchema({
    typeDefs: /* GraphQL */ `
      type Query {
        ok: Boolean!
      }
      type Mutation {
        touch: Boolean!
      }
      type Tick {
        n: Int!
        label: String
        big: String
        secret: String
        erp: String
        who: String
      }
      type Subscription {
        ticks(label: String, from: Int): Tick!
      }
    `,
    resolvers: {
      Query: { ok: () => true },
      Mutation: { touch: () => true },
      Tick: {
        secret: () => {
          throw new Error('internal detail: connection string postgres://x');
        },
        erp: () => {
          throw new ErpBusyError(ERP_TEXT);
        },
        // What the context builder saw: proves the context reaches the subscription's resolvers.
        who: (_tick: Tick, _args: unknown, context: { who?: string }) => context.who ?? null,
      },
      Subscription: {
        ticks: {
          subscribe: (_root: unknown, args: Record<string, unknown>, context: unknown) => {
            if (args.label === 'refuse') throw new ErpSessionError(ERP_TEXT, 15);
            const source = new TestSource(args, context);
            sources.list.push(source);
            return source;
          },
          resolve: (tick: Tick) => tick,
        },
      },
    },
  });
}
