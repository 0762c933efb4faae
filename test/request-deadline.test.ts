import { deadlines } from '../src/erp/deadline';
import { until } from './helpers';

/**
 * The requests' time limits (erp/deadline.ts): one queue and one timer for all of them. Each ends as
 * `AbortSignal.timeout()` and `AbortController.abort()` would, with a TimeoutError or an AbortError; one let go of
 * never fires; and the ones after it still do.
 */
const reasonOf = (signal: { reason: unknown }) => (signal.reason as DOMException).name;

it('times out with a TimeoutError, in the order the deadlines were made; a disposed one never fires', async () => {
  const deadline = deadlines(30);
  const first = deadline();
  const disposed = deadline();
  const last = deadline();
  disposed.dispose();
  await until(() => last.signal.aborted, 'the last deadline passed', 2000);
  expect([first.signal.aborted, reasonOf(first.signal)]).toEqual([true, 'TimeoutError']);
  expect(reasonOf(last.signal)).toBe('TimeoutError');
  expect(disposed.signal.aborted).toBe(false);
});

it('abort() ends it at once with an AbortError, and the timer later leaves it as it is', async () => {
  const deadline = deadlines(30);
  const gone = deadline();
  let heard = 0;
  gone.signal.watch(() => heard++);
  gone.abort();
  expect([gone.signal.aborted, reasonOf(gone.signal), heard]).toEqual([true, 'AbortError', 1]);
  // Not disposed: the timer still finds it, and a Cancel aborts once.
  const later = deadline();
  await until(() => later.signal.aborted, 'a later deadline passed', 2000);
  expect([reasonOf(gone.signal), heard]).toEqual(['AbortError', 1]);
});

it('a limit longer than setTimeout can keep (the settings allow up to 2^53 ms) arms the longest timer, not one that fires at once', () => {
  const armed = jest.spyOn(global, 'setTimeout');
  try {
    const limit = deadlines(3_000_000_000)();
    // Node would fire a delay over 2^31-1 ms after 1 ms, with a TimeoutOverflowWarning, again and again.
    expect(armed.mock.calls.map((call) => call[1])).toEqual([2 ** 31 - 1]);
    expect(limit.signal.aborted).toBe(false);
    limit.dispose();
  } finally {
    armed.mockRestore();
  }
});
