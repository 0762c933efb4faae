import { randomBytes } from 'node:crypto';
import { STATUS_TEXT } from './protocol';
import type { SimUser } from './users';

interface SessionRecord {
  user: SimUser;
  serialnum: string;
  lastSeen: number;
  /** Set when the token was ended by something other than inactivity: the status its next use answers. */
  revoked?: { status: number; message: string };
}

export type SessionCheck =
  | { ok: true; user: SimUser }
  | { ok: false; status: number; message: string };

export interface SessionRules {
  /** Inactivity timeout in ms; 0 keeps sessions forever. */
  timeoutMs: number;
  /** A login of the same user from another device (serialnum) ends the older tokens with status 1. */
  kickOtherDevices: boolean;
  /**
   * A login of the same user ends every older token of that user with status 1, whatever its serialnum: what a
   * real ERP can do (ERP-PROTOCOL.md section 4), and what replicas sharing one service account meet.
   */
  kickOlderSessions?: boolean;
}

/**
 * Session tokens with an inactivity timeout on a clock the tests control (no sleeps to expire a session).
 */
export class SessionStore {
  private readonly sessions = new Map<string, SessionRecord>();

  constructor(
    private readonly rules: SessionRules,
    private readonly now: () => number,
  ) {}

  open(user: SimUser, serialnum: string): string {
    if (this.rules.kickOtherDevices || this.rules.kickOlderSessions) {
      for (const record of this.sessions.values()) {
        const kicked = this.rules.kickOlderSessions || record.serialnum !== serialnum;
        if (record.user.name === user.name && kicked && !record.revoked) {
          record.revoked = { status: 1, message: STATUS_TEXT.kickedByMobile };
        }
      }
    }
    const token = randomBytes(16).toString('hex').toUpperCase();
    this.sessions.set(token, { user, serialnum, lastSeen: this.now() });
    return token;
  }

  check(token: string | undefined): SessionCheck {
    if (token === undefined || token === '') return { ok: false, status: 15, message: STATUS_TEXT.noSession };
    const record = this.sessions.get(token);
    if (!record) return { ok: false, status: 2, message: STATUS_TEXT.invalid };
    if (record.revoked) return { ok: false, ...record.revoked };
    if (record.user.state === 'invalid') return { ok: false, status: 4, message: STATUS_TEXT.userInvalid };
    if (record.user.state === 'frozen') return { ok: false, status: 5, message: STATUS_TEXT.userFrozen };
    const now = this.now();
    if (this.rules.timeoutMs > 0 && now - record.lastSeen > this.rules.timeoutMs) {
      this.sessions.delete(token);
      return { ok: false, status: 2, message: STATUS_TEXT.timeout };
    }
    record.lastSeen = now;
    return { ok: true, user: record.user };
  }

  /** Ends a token as the ERP would: status 1 (other mobile), 9 (PC login), 10 (session error), 2 (timeout). */
  revoke(token: string, status: 1 | 2 | 9 | 10): void {
    const record = this.sessions.get(token);
    if (!record) return;
    const text = { 1: STATUS_TEXT.kickedByMobile, 2: STATUS_TEXT.timeout, 9: STATUS_TEXT.kickedByPc, 10: `${STATUS_TEXT.sessionError}令牌校验失败` }[status];
    record.revoked = { status, message: text };
  }

  /** Every live token, for tests that revoke "whatever the client holds". */
  tokens(): string[] {
    return [...this.sessions.entries()].filter(([, r]) => !r.revoked).map(([t]) => t);
  }

  expireAll(): void {
    for (const token of this.sessions.keys()) this.revoke(token, 2);
  }
}
