/** Reading the ERP's display text: numbers with thousands separators, zone-less local date text. */

/** `"12,345.60"` -> 12345.6; empty or unreadable -> null. */
export function parseErpNumber(text: string): number | null {
  const t = text.replace(/[,\s]/g, '');
  if (t === '' || !/^[-+]?(\d+\.?\d*|\.\d+)$/.test(t)) return null;
  return Number(t);
}

export interface LocalDateTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const DATE_RE = /^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$/;

/** Both `2024/5/6 9:30:00` and `2024-05-06 09:30:00`, with or without the time. */
export function parseErpDateTime(text: string): LocalDateTime | null {
  const m = DATE_RE.exec(text.trim());
  if (!m) return null;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map((v) => (v === undefined ? 0 : Number(v))) as [
    number, number, number, number, number, number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  // Reject 2024/2/31 and friends: the calendar must agree.
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCMonth() !== month - 1) return null;
  return { year, month, day, hour, minute, second };
}
