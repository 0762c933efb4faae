import { AsyncResource } from 'node:async_hooks';
import { cancelOf, type Cancel } from '../abort';
import type { ErpCall, ErpLayer, Send } from '../call';
import { ErpAbortedError, ErpBusyError, type ErpError } from '../errors';
import { ExpiryQueue, type Expiring } from '../expiry';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

export interface LimiterOptions {
  /** ERP calls in flight at once for the whole process. */
  maxConcurrent: number;
  /** How long a call may wait for a slot before it fails with ERP_BUSY. */
  maxWaitMs: number;
}

/** A call waiting for a slot, in arrival order; it leaves its place empty when its caller gives up or its wait ends. */
class Waiting implements Expiring {
  expiresAt = 0;
  private cancel: Cancel | undefined;
  // Bound to its caller's async context: a slot is freed by another request's call, in that call's context.
  private readonly resource = new AsyncResource('ErpQueuedCall');

  constructor(
    readonly call: ErpCall,
    private readonly resolve: (reply: ErpReply) => void,
    private readonly reject: (error: unknown) => void,
    private readonly maxWaitMs: number,
    private readonly left: (waiting: Waiting) => void,
    private readonly waited: ((outcome: string) => void) | void,
  ) {
    if (call.signal) {
      this.cancel = cancelOf(call.signal);
      this.cancel.watch(this.onAbort);
    }
  }

  /** Its turn came: it runs in its own caller's context, so what it reports (logs, trace spans) is its own. */
  start(run: (call: ErpCall) => Promise<ErpReply>): void {
    this.cancel?.unwatch(this.onAbort);
    this.waited?.('slot');
    // `then` with both handlers: the call's own promise settles the caller's, and nothing is left unhandled.
    this.resource.runInAsyncScope(() => void run(this.call).then(this.resolve, this.reject));
  }

  expire(): void {
    this.leave(new ErpBusyError(`no ERP call slot within ${this.maxWaitMs} ms`, { path: this.call.path }));
  }

  private readonly onAbort = (): void => {
    this.leave(new ErpAbortedError({ phase: 'queued', path: this.call.path }));
  };

  private leave(error: ErpError): void {
    this.cancel?.unwatch(this.onAbort);
    this.left(this);
    this.waited?.(error.code);
    this.reject(error);
  }
}

/**
 * A process-wide bound on concurrent ERP calls with a maximum queue wait. A call that finds a slot free goes on at
 * once, with a plain call (no promise, closure, timer or listener of the limiter's own); only a call that has to wait
 * is queued, with its caller's abort watched and its wait bounded by the queue's one timer (expiry.ts). A call that
 * gave up waiting leaves its place empty.
 */
export function concurrencyLimit(options: LimiterOptions, observer: ErpObserver = {}): ErpLayer {
  let active = 0;
  const queue = new ExpiryQueue<Waiting>(options.maxWaitMs);
  const report = () => observer.queue?.(active, queue.size);
  // A waiting call that gave up or expired (then it is out of the queue already).
  const left = (waiting: Waiting) => {
    queue.delete(waiting);
    report();
  };
  return {
    wrap: (next) => {
      const release = (): void => {
        active--;
        // Queued calls are started by whichever call frees a slot.
        while (active < options.maxConcurrent && queue.size > 0) {
          const waiting = queue.shift()!;
          active++;
          waiting.start(run);
        }
        report();
      };
      const run: Send = (call) => {
        let reply: Promise<ErpReply>;
        try {
          reply = next(call);
        } catch (e) {
          reply = Promise.reject(e);
        }
        // The slot is given back as soon as the call settles; the caller gets the call's own promise.
        reply.then(release, release);
        return reply;
      };
      return (call) => {
        if (active < options.maxConcurrent && queue.size === 0) {
          active++;
          report();
          return run(call);
        }
        if (call.signal?.aborted) return Promise.reject(new ErpAbortedError({ phase: 'queued', path: call.path }));
        return new Promise<ErpReply>((resolve, reject) => {
          queue.add(new Waiting(call, resolve, reject, options.maxWaitMs, left, observer.waiting?.(call)));
          report();
        });
      };
    },
  };
}
