import { detached, readKey, type ErpLayer } from '../call';
import { ErpAbortedError } from '../errors';
import { readTags, type WriteFence } from '../fence';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

interface Flight {
  promise: Promise<ErpReply>;
  waiters: number;
  controller: AbortController;
  /** The write fence's position when the flight started, and what it reads. */
  startedAt: number;
  tags: readonly string[];
}

/**
 * Identical reads in flight at the same time (same identity, endpoint, cmdkey and datas) share one ERP call.
 * Each caller keeps its own abort signal: one caller leaving does not fail the others, and the shared call is
 * abandoned only when every caller has left.
 *
 * With a write fence, a flight that started before a write of what it reads (sent or settled since) is not joined:
 * the ERP may already have executed it against the old record, and a save's confirming re-read must see the save.
 */
export function coalesce(observer: ErpObserver = {}, fence?: WriteFence): ErpLayer {
  const flights = new Map<string, Flight>();
  return {
    wrap: (next) => (call) => {
      if (call.kind !== 'read') return next(call);
      if (call.signal?.aborted) return Promise.reject(new ErpAbortedError({ phase: 'unsent', path: call.path }));
      const key = readKey(call);
      let flight = flights.get(key);
      // The older flight goes on for its own waiters; the new one takes the key.
      if (flight && fence?.movedSince(flight.tags, flight.startedAt)) flight = undefined;
      if (flight) observer.coalesced?.(call);
      else {
        const controller = new AbortController();
        const startedAt = fence?.position() ?? 0;
        // The shared call follows no one caller's signal: only its own, aborted when the last waiter leaves.
        const promise = next({ ...detached(call), signal: controller.signal }).finally(() => {
          if (flights.get(key) === created) flights.delete(key);
        });
        // Every waiter may leave before it settles: the flight's own rejection must never go unhandled.
        promise.catch(() => undefined);
        const created: Flight = { promise, waiters: 0, controller, startedAt, tags: fence ? readTags(call) : [] };
        flight = created;
        flights.set(key, created);
      }
      const current = flight;
      current.waiters++;
      const signal = call.signal;
      if (!signal) return current.promise.finally(() => current.waiters--);
      return new Promise<ErpReply>((resolve, reject) => {
        let done = false;
        const leave = () => {
          if (done) return;
          done = true;
          current.waiters--;
          signal.removeEventListener('abort', onAbort);
        };
        const onAbort = () => {
          leave();
          if (current.waiters === 0) current.controller.abort();
          reject(new ErpAbortedError({ phase: 'shared', path: call.path }));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        current.promise.then(
          (v) => {
            leave();
            resolve(v);
          },
          (e: unknown) => {
            leave();
            reject(e);
          },
        );
      });
    },
  };
}
