/**
 * What the simulated ERP writes on the wire (ERP-PROTOCOL.md §3-§7). Kept apart from the client's own decoder on
 * purpose: two independent readings of the protocol notes catch each other's mistakes.
 */

export const STATUS_TEXT = {
  kickedByMobile: '您的账号已在其它移动设备上登录，请您重新登录。',
  timeout: '会话超时，请您重新登录。',
  invalid: '会话非法',
  userInvalid: '用户名无效。',
  userFrozen: '用户被冻结。',
  kickedByPc: '您的账号已在电脑上登录，请您重新登录。',
  sessionError: '会话异常,',
  noSession: '非法访问，未登录系统。',
  scriptError: '服务程序发生错误:',
} as const;

export const DELETED_TEXT = '抱歉，您访问的单据已被删除！';
export const NO_PERMISSION_TEXT = '对不起，您没有权限查看此单据！';

export type Header = { status: number | string; message: string; session?: string; appversion?: string };
export type Reply = { header: Header; body?: Record<string, unknown> };

export function ok(session: string, body: Record<string, unknown>): Reply {
  return { header: { status: 0, message: 'ok', session }, body };
}

export function failure(status: number | string, message: string): Reply {
  // A failed status carries no body (§3: check the status before touching the body).
  return { header: { status, message } };
}

export function message(session: string, text: string, target = 'close'): Reply {
  return ok(session, { model: 'message', message: { title: '', text, url: '', wait: 0, target, uitype: '', data: '' } });
}

/** Money and number columns: thousands separators and two fixed decimals, as the ERP prints them. */
export function formatNumber(n: number): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

/**
 * Server-locale date text. Most rows use the classic ASP form `2024/5/6 9:30:00`; some installs (and some columns)
 * print `2024-05-06 09:30:00`. The simulator prints both so that clients must parse both.
 */
export function formatDate(d: Date, iso: boolean): string {
  const y = d.getUTCFullYear();
  const mo = d.getUTCMonth() + 1;
  const day = d.getUTCDate();
  const h = d.getUTCHours();
  const mi = String(d.getUTCMinutes()).padStart(2, '0');
  const s = String(d.getUTCSeconds()).padStart(2, '0');
  if (iso) {
    const p = (n: number) => String(n).padStart(2, '0');
    return `${y}-${p(mo)}-${p(day)} ${p(h)}:${mi}:${s}`;
  }
  return `${y}/${mo}/${day} ${h}:${mi}:${s}`;
}

export function htmlPage(title: string, text: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h3>${title}</h3><p>${text}</p></body></html>`;
}
