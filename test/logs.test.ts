import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createLogger } from '../src/server/logger';
import { LogCapture } from './helpers';
import { freePort, poll } from './support/attack';

/** Log lines people and pipelines can read: ISO times, level names, pretty mode from the environment. */
it('JSON lines carry an ISO timestamp and the level name', () => {
  const capture = new LogCapture();
  createLogger('info', capture).warn({ msg: 'hello' });
  const line = JSON.parse(capture.lines[0]!) as { level: unknown; time: unknown; msg: unknown };
  expect(line.level).toBe('warn');
  expect(line.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  expect(line.msg).toBe('hello');
});

it.each([
  ['ZB_LOG_PRETTY=true', { ZB_LOG_PRETTY: 'true' }, /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [+-]\d{4}\] INFO: /m],
  ['default (not a terminal)', {}, /^\{"level":"info","time":"\d{4}-/m],
  // "ready" is logged when readiness is true: after the service account's login, not when the port opens.
  ['"ready" only after the ERP login', {}, /"msg":"erp login"[^\n]*"outcome":"ok"[\s\S]*"msg":"zb-aftersale-subgraph ready"/],
])('dist/main.js logs %s', async (_name, env, pattern) => {
  const port = await freePort();
  const child = spawn(process.execPath, [join(__dirname, '..', 'dist', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  try {
    await poll(() => /subgraph ready/.test(output), 'the ready line', 20000);
    expect(output).toMatch(pattern);
  } finally {
    child.kill('SIGKILL');
  }
}, 30000);
