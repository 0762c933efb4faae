import { setTimeout as delay } from 'node:timers/promises';
import Redis from 'ioredis';
import type { ErpCall } from '../src/erp/call';
import { ErpAuthError } from '../src/erp/errors';
import { ServiceAccountSession } from '../src/erp/service-account';
import type { ErpReply } from '../src/erp/types';
import { FleetRedis } from '../src/fleet/redis';
import { RedisSessionStore } from '../src/fleet/session';
import { postJson, SIM_PASSWORD, SIM_USER } from './helpers';
import { gql, startFleet, type FleetUnderTest } from './support/fleet';
import { describeWithRedis, redisConnections } from './support/redis-server';

const WRONG = '用户名或密码错误。';

/**
 * The login backoff after the ERP refuses the service account is fleet-wide: one refused login for the whole fleet per
 * backoff window, the same reason on every replica, and so never the ERP's captcha (more than 3 failed logins).
 */
describeWithRedis('a refused service account backs the whole fleet off (Redis shared refusal)', () => {
  let fleet: FleetUnderTest;
  const wrong = 'wrong-Fleet-pw-17';

  beforeAll(async () => {
    fleet = await startFleet({
      replicas: 3,
      env: { ZB_PASSWORD: wrong, ZB_LOGIN_BACKOFF_MS: '60000', ZB_REDIS_KEY_PREFIX: 'backoff:' },
      // Started means answering readiness at all: with a refused account it is 503.
      answered: (status) => status === 503,
    });
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it('three replicas make one login in the backoff window, all report the ERP reason, and the captcha is never triggered', async () => {
    const ready = (i: number) => fetch(`${fleet.replicas[i]!.base}/health/ready`).then(async (r) => ({ status: r.status, body: (await r.json()) as { erp?: string } }));
    // Every replica's own start-up login has gone through the fleet's single flight.
    for (let round = 0; round < 3; round++) {
      const queries = Array.from({ length: 30 }, (_, i) => gql(fleet.replicas[i % 3]!.base, '{ afterSaleServices(pageSize: 3) { items { id } } }'));
      const probes = Array.from({ length: 12 }, (_, i) => ready(i % 3));
      const answers = await Promise.all(queries);
      const probed = await Promise.all(probes);
      expect(answers.map((r) => r.body?.errors?.[0]?.extensions?.code)).toEqual(Array.from({ length: 30 }, () => 'UNAUTHENTICATED'));
      expect(probed.map((r) => r.status)).toEqual(Array.from({ length: 12 }, () => 503));
      // The first round may meet a replica still waiting its turn at the fleet's login lock.
      if (round > 0) expect(probed.map((r) => r.body.erp)).toEqual(Array.from({ length: 12 }, () => `login refused: ${WRONG}`));
      await delay(100);
    }
    for (const i of [0, 1, 2]) expect(await ready(i)).toEqual({ status: 503, body: expect.objectContaining({ erp: `login refused: ${WRONG}` }) });
    expect(fleet.sim.calls.count('login')).toBe(1);
    expect(fleet.sim.calls.count()).toBe(1);

    // The fleet's record: the ERP's reason, never the password; it expires with the backoff.
    const raw = new Redis(fleet.redis.url);
    try {
      const record = await raw.get('backoff:session:service:admin:refused');
      expect(JSON.parse(record ?? 'null')).toEqual(expect.objectContaining({ status: 3, reason: WRONG, step: 1 }));
      expect(record).not.toContain(wrong);
      const ttl = await raw.pttl('backoff:session:service:admin:refused');
      expect(ttl).toBeGreaterThan(50_000);
      expect(ttl).toBeLessThanOrEqual(60_000);
    } finally {
      raw.disconnect();
    }

    // The ERP did not lock the account: with the password fixed, a login needs no captcha.
    const fixed = await postJson(`${fleet.sim.url}/webapi/v3/ov1/login`, {
      datas: [{ id: 'user', val: `txt:${SIM_USER}` }, { id: 'password', val: `txt:${SIM_PASSWORD}` }, { id: 'serialnum', val: 'txt:fleet-fixed' }],
    });
    expect(fixed.json).toEqual(expect.objectContaining({ header: expect.objectContaining({ status: 0 }) }));
  }, 60_000);
});

describeWithRedis('the fleet session adapter keeps the refusal in Redis', () => {
  const { connect: connections, track } = redisConnections('b');

  it('records, reads (on another replica), expires with the backoff while the step stays, and clears', async () => {
    const [a, b] = await connections(2);
    const [one, two] = [a!, b!].map((r) => new RedisSessionStore(r, { lockMs: 2000 }));
    await expect(two!.refusal('service:admin')).resolves.toBeUndefined();
    const refusal = { status: 3, reason: WRONG, until: Date.now() + 300, step: 2 };
    await one!.recordRefusal('service:admin', refusal, 5000);
    await expect(two!.refusal('service:admin')).resolves.toEqual({ active: refusal, step: 2 });
    await expect(two!.refusal('service:other')).resolves.toBeUndefined();
    await delay(400);
    // The window is over (the record expired), the step is kept for the next refusal to double.
    await expect(two!.refusal('service:admin')).resolves.toEqual({ step: 2 });
    expect(await a!.client.exists(a!.key('session', 'service:admin', 'refused'))).toBe(0);
    await one!.recordRefusal('service:admin', { ...refusal, until: Date.now() + 5000 }, 10_000);
    await two!.clearRefusal('service:admin');
    await expect(one!.refusal('service:admin')).resolves.toBeUndefined();
  });

  it('Redis unreachable: nothing read, recording and clearing never fail', async () => {
    const down = new FleetRedis({ url: 'redis://127.0.0.1:1', keyPrefix: 'down:', commandTimeoutMs: 100 });
    track(down);
    const store = new RedisSessionStore(down, { lockMs: 500 });
    await expect(store.refusal('service:admin')).resolves.toBeUndefined();
    await expect(store.recordRefusal('service:admin', { status: 3, reason: WRONG, until: Date.now() + 1000, step: 1 }, 1000)).resolves.toBeUndefined();
    await expect(store.clearRefusal('service:admin')).resolves.toBeUndefined();
  });

  it('three service sessions: one refused login per window, the step doubles fleet-wide, a success anywhere clears it', async () => {
    const conns = await connections(3);
    let password = 'wrong';
    const logins: number[] = [];
    const send = (i: number) => async (call: ErpCall): Promise<ErpReply> => {
      logins.push(i);
      await delay(20);
      expect(call.path).toBe('/login');
      if (password === 'wrong' || i !== 2) throw new ErpAuthError(`ERP login: ${WRONG}`, 3, { path: '/login' });
      return { header: { status: 0, message: 'ok', session: `token-${logins.length}` }, body: {} } as unknown as ErpReply;
    };
    const sessions = conns.map(
      (r, i) =>
        new ServiceAccountSession(send(i), { user: 'svc', password: i === 2 ? 'right' : 'wrong', serialnum: 's' }, '/login', {}, {
          backoffMs: 300,
          backoffMaxMs: 10_000,
          shared: new RedisSessionStore(r, { lockMs: 2000, pollMs: 10 }),
        }),
    );
    const everyone = () => Promise.all(sessions.map((s) => s.login().then(() => 'ok', (e: unknown) => (e instanceof ErpAuthError ? 'refused' : String(e)))));

    // Replicas 0 and 1 carry a wrong password, replica 2 the right one, but the ERP refuses all for now.
    expect(await everyone()).toEqual(['refused', 'refused', 'refused']);
    expect(logins).toHaveLength(1);
    for (const s of sessions) expect(s.status()).toEqual(expect.objectContaining({ state: 'backoff', reason: WRONG }));
    const first = sessions[0]!.status().retryAt!;
    expect(await everyone()).toEqual(['refused', 'refused', 'refused']);
    expect(logins).toHaveLength(1);

    // After the window: one more refused login for the fleet, and the shared step doubled the pause (600 ms).
    await delay(350);
    const before = Date.now();
    expect(await everyone()).toEqual(['refused', 'refused', 'refused']);
    expect(logins).toHaveLength(2);
    const second = sessions.map((s) => s.status().retryAt!);
    expect(new Set(second).size).toBe(1);
    expect(second[0]! - before).toBeGreaterThanOrEqual(550);
    expect(second[0]! - first).toBeGreaterThan(300);

    // The ERP now takes the right password: whichever replica logs in, a success clears the fleet's record.
    password = 'right';
    await delay(700);
    await sessions[2]!.login();
    expect(sessions[2]!.status()).toEqual({ state: 'ready' });
    await expect(new RedisSessionStore(conns[0]!, { lockMs: 2000 }).refusal('service:svc')).resolves.toBeUndefined();
    // The others take the fleet's token, no login of their own.
    const count = logins.length;
    await Promise.all(sessions.slice(0, 2).map((s) => s.login()));
    expect(logins).toHaveLength(count);
  });
});
