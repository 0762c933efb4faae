import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Preloaded (`node -r`) into a server under measurement by bench/capacity.ts: the event loop's delay, i.e. how long
 * work that is ready (an ERP reply on a socket, a queued call) waits for the loop. Asked over the fork IPC channel
 * with 'loop-delay?', it answers the figures since the last question (ms) and starts again. Touches nothing else.
 */
const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
process.on('message', (message) => {
  if (message !== 'loop-delay?') return;
  const ms = (ns: number) => ns / 1e6;
  process.send?.({ loopDelay: { mean: ms(histogram.mean), p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) } });
  histogram.reset();
});
