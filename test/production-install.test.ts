import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, poll } from './support/attack';

/**
 * The Dockerfile's runtime stage without Docker: copy exactly what it copies into a clean folder (the build stage's
 * output from this checkout's dist/, built by `npm test`'s pretest), install with `npm ci --omit=dev`, start the
 * command of its CMD, and query. A dependency the product needs at run time but lists under devDependencies, or a
 * file read from the working directory instead of the package, fails here.
 */
const ROOT = join(__dirname, '..');

interface Copy {
  from: 'context' | 'build';
  sources: string[];
  target: string;
}

/** The COPY and CMD lines of the Dockerfile's last stage. */
function runtimeStage(): { copies: Copy[]; cmd: string[] } {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n');
  const last = lines.map((l, i) => (/^FROM\s/.test(l) ? i : -1)).filter((i) => i >= 0).pop() ?? 0;
  const copies: Copy[] = [];
  let cmd: string[] = [];
  for (const line of lines.slice(last)) {
    const copy = /^COPY\s+(--from=(\S+)\s+)?(.+)$/.exec(line);
    if (copy) {
      const words = copy[3]!.trim().split(/\s+/);
      copies.push({ from: copy[2] ? 'build' : 'context', sources: words.slice(0, -1), target: words[words.length - 1]! });
    }
    const run = /^CMD\s+(\[.*\])\s*$/.exec(line);
    if (run) cmd = JSON.parse(run[1]!) as string[];
  }
  return { copies, cmd };
}

it('the runtime stage installs with --omit=dev, starts with its CMD from another directory layout, and answers a query', async () => {
  const { copies, cmd } = runtimeStage();
  expect(cmd[0]).toBe('node');
  expect(existsSync(join(ROOT, 'dist', 'main.js'))).toBe(true);
  const app = mkdtempSync(join(tmpdir(), 'zb-image-'));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    for (const c of copies) {
      for (const source of c.sources) {
        // The build stage works in /app, so `/app/dist` is this checkout's dist/.
        const local = c.from === 'build' ? join(ROOT, source.replace(/^\/app\//, '')) : join(ROOT, source);
        const target = c.sources.length > 1 || c.target.endsWith('/') ? join(app, c.target, source.split('/').pop()!) : join(app, c.target);
        cpSync(local, target, { recursive: true });
      }
    }
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, stdio: 'pipe', timeout: 240_000 });
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);

    const port = await freePort();
    const cwd = mkdtempSync(join(tmpdir(), 'zb-cwd-'));
    // Started from an unrelated working directory: schema/ must be found beside the package, not in the cwd.
    child = spawn(process.execPath, [...cmd.slice(1, -1), join(app, cmd[cmd.length - 1]!)], {
      cwd,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', ZB_SESSION_HEADER_REQUIRED: 'false', PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-4000)));
    child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString('utf8')).slice(-4000)));
    const base = `http://127.0.0.1:${port}`;
    await poll(() => fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false), `the image's CMD serves /health/ready\n${output}`, 30000, 100);
    const r = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ afterSaleServices(pageSize: 2) { items { id title } } }' }),
    });
    const body = (await r.json()) as { data?: { afterSaleServices: { items: unknown[] } }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data?.afterSaleServices.items).toHaveLength(2);
    rmSync(cwd, { recursive: true, force: true });
  } finally {
    child?.kill('SIGKILL');
    rmSync(app, { recursive: true, force: true });
  }
}, 300_000);
