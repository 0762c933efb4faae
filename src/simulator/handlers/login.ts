import { failure, STATUS_TEXT, type Reply } from '../protocol';
import type { SessionStore } from '../sessions';
import type { SimUser } from '../users';
import type { Datas } from './datas';

/** After this many failed logins of one user the ERP asks for a captcha answer (`rndcode`). */
const CAPTCHA_AFTER = 3;
export const SIM_CAPTCHA_ANSWER = '8888';

function loginFailure(status: number, text: string, captcha: boolean): Reply {
  return {
    header: { status, message: text },
    body: { model: 'init', action: 'fail', fail: { message: text, newrndcode: captcha ? 'sim-captcha.png' : '', newappurl: '' } },
  };
}

/** Values travel as `txt:<plain>`; anything else would be DES ciphertext, which the simulator cannot decrypt. */
function plain(value: string | undefined): string | undefined {
  return value !== undefined && value.startsWith('txt:') ? value.slice(4) : undefined;
}

export class LoginHandler {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly users: SimUser[],
    private readonly sessions: SessionStore,
  ) {}

  handle(datas: Datas): Reply {
    const name = plain(datas.get('user')) ?? '';
    const password = plain(datas.get('password'));
    const serialnum = plain(datas.get('serialnum')) ?? datas.get('serialnum') ?? '';
    if ([...serialnum].length > 20) return failure(3, 'serialnum 不能超过20个字符');
    const user = this.users.find((u) => u.name === name);
    const failed = this.failures.get(name) ?? 0;
    if (failed > CAPTCHA_AFTER && datas.get('rndcode') !== SIM_CAPTCHA_ANSWER) {
      return loginFailure(3, '请输入正确的验证码。', true);
    }
    if (!user || password === undefined || user.password !== password) {
      this.failures.set(name, failed + 1);
      return loginFailure(3, '用户名或密码错误。', failed + 1 > CAPTCHA_AFTER);
    }
    if (user.state === 'invalid') return loginFailure(4, STATUS_TEXT.userInvalid, false);
    if (user.state === 'frozen') return loginFailure(5, STATUS_TEXT.userFrozen, false);
    this.failures.delete(name);
    const session = this.sessions.open(user, serialnum);
    return { header: { status: 0, message: '登录成功', session, appversion: '32.17' }, body: { model: 'init', action: 'succ' } };
  }
}
