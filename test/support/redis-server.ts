import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { FleetRedis } from '../../src/fleet/redis';
import { freePort, poll, within } from './attack';

/**
 * A real redis-server for the fleet suites (test/fleet-*.test.ts), on a free loopback port, with no persistence.
 * Every instance is killed by pid when its test file ends (afterAll), even after a failure, and at process exit.
 * Where redis-server is not installed the suites skip themselves and say how to enable them.
 */
export const REDIS_BINARY = process.env.REDIS_SERVER ?? 'redis-server';

/** Whether redis-server can be started here. */
export function redisServerAvailable(): boolean {
  const probe = spawnSync(REDIS_BINARY, ['--version'], { stdio: 'ignore', timeout: 5000 });
  return probe.status === 0;
}

/** `describe`, or `describe.skip` with a plain message saying why and how to enable it. */
export function describeWithRedis(name: string, body: () => void): void {
  if (redisServerAvailable()) {
    describe(name, body);
    return;
  }
  console.warn(
    `SKIPPED "${name}": ${REDIS_BINARY} is not installed. Install it (Debian/Ubuntu: apt-get install -y redis-server; CI's .ci/run does) ` +
      'or point REDIS_SERVER at a redis-server binary, then run the fleet suites again.',
  );
  describe.skip(name, body);
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface RedisInstance {
  readonly port: number;
  readonly url: string;
  pid(): number;
  /** SIGSTOP: the server keeps its connections and answers nothing (a hung Redis). */
  freeze(): void;
  thaw(): void;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
  /** A new server on the same port (empty: nothing was persisted). */
  restart(): Promise<void>;
  /** Kills it for good (afterAll). */
  stop(): Promise<void>;
  output(): string;
}

function pingable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d: Buffer) => done(d.toString().startsWith('+PONG')));
  });
}

export async function startRedis(): Promise<RedisInstance> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  const launch = async () => {
    const c = spawn(REDIS_BINARY, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    live.add(c);
    exited = new Promise<void>((resolve) => c.once('exit', () => {
      live.delete(c);
      resolve();
    }));
    const keep = (b: Buffer) => {
      log = (log + b.toString()).slice(-4000);
    };
    c.stdout?.on('data', keep);
    c.stderr?.on('data', keep);
    await poll(() => pingable(port), `redis-server answers PING on ${port}`, 10_000, 50);
  };
  const kill = async () => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGKILL');
    await within(exited, 5000);
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    pid: () => child?.pid ?? -1,
    freeze: () => child?.kill('SIGSTOP'),
    thaw: () => child?.kill('SIGCONT'),
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    stop: kill,
    output: () => log,
  };
}

/**
 * For a describe block: a redis-server started before its tests and stopped after them, and a maker of `n` replicas'
 * connections (each a FleetRedis) under a fresh key prefix per call, so tests never see each other's keys.
 */
export function redisConnections(tag: string): { connect(n: number): Promise<FleetRedis[]>; track(client: FleetRedis): FleetRedis } {
  let redis: RedisInstance | undefined;
  const clients: FleetRedis[] = [];
  let seq = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await redis?.stop();
  });
  const connect = async (n: number): Promise<FleetRedis[]> => {
    if (!redis) throw new Error('redis-server did not start');
    const prefix = `${tag}${++seq}:`;
    const url = redis.url;
    const made = Array.from({ length: n }, () => new FleetRedis({ url, keyPrefix: prefix, commandTimeoutMs: 300 }));
    clients.push(...made);
    await Promise.all(made.map((r) => new Promise<void>((resolve) => (r.available ? resolve() : r.client.once('ready', () => resolve())))));
    return made;
  };
  // Any other client a test makes (e.g. one pointed at a dead port) is closed with the rest.
  const track = (client: FleetRedis): FleetRedis => {
    clients.push(client);
    return client;
  };
  return { connect, track };
}
