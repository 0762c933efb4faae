import { Cancel, cancelOf } from '../abort';
import { readKey, type ErpCall, type ErpLayer, type Send } from '../call';
import { ErpAbortedError } from '../errors';
import { readTags, type WriteFence } from '../fence';
import type { ErpObserver } from '../observer';
import type { ErpReply } from '../types';

interface Flight {
  promise: Promise<ErpReply>;
  waiters: number;
  /** The shared call's own signal: aborted when its last waiter leaves. */
  cancel: Cancel;
  /** The write fence's position when the flight started. */
  startedAt: number;
  /** What it reads (the fence's tags), worked out when a read first tries to join it. */
  tags: readonly string[] | undefined;
  call: ErpCall;
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

  const start = (key: string, call: ErpCall, next: Send): Flight => {
    const cancel = new Cancel();
    // The shared call follows no one caller's signal: only its own, aborted when the last waiter leaves.
    const promise = next({ ...call, signal: cancel });
    const flight: Flight = { promise, waiters: 0, cancel, startedAt: fence?.position() ?? 0, tags: undefined, call };
    // Registered first, so the key is free before any waiter hears the answer; it also handles the flight's own
    // rejection, which every waiter may have left.
    const land = () => {
      if (flights.get(key) === flight) flights.delete(key);
    };
    promise.then(land, land);
    flights.set(key, flight);
    return flight;
  };

  return {
    wrap: (next) => (call) => {
      if (call.kind !== 'read') return next(call);
      const signal = call.signal;
      if (signal?.aborted) return Promise.reject(new ErpAbortedError({ phase: 'unsent', path: call.path }));
      const key = readKey(call);
      let flight = flights.get(key);
      // The older flight goes on for its own waiters; the new one takes the key.
      if (flight && fence?.movedSince((flight.tags ??= readTags(flight.call)), flight.startedAt)) flight = undefined;
      if (flight) observer.coalesced?.(call);
      else flight = start(key, call, next);
      const current = flight;
      current.waiters++;
      if (!signal) return current.promise.finally(() => current.waiters--);
      return new Promise<ErpReply>((resolve, reject) => {
        const cancel = cancelOf(signal);
        let done = false;
        const leave = () => {
          done = true;
          current.waiters--;
          cancel.unwatch(onAbort);
        };
        const onAbort = () => {
          if (done) return;
          leave();
          if (current.waiters === 0) current.cancel.abort();
          reject(new ErpAbortedError({ phase: 'shared', path: call.path }));
        };
        cancel.watch(onAbort);
        current.promise.then(
          (v) => {
            if (done) return;
            leave();
            resolve(v);
          },
          (e: unknown) => {
            if (done) return;
            leave();
            reject(e);
          },
        );
      });
    },
  };
}
