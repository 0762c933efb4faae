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

/**
 * The digits of `s` from `i`, at least one and at most `max`, as a number; -1 when there is none. Where they end is
 * `digitsEnd` (set by the last call): date text is read once per date shown, so no match arrays or substrings.
 */
let digitsEnd = 0;
function digits(s: string, i: number, max: number): number {
  let value = 0;
  let j = i;
  for (; j < s.length && j - i < max; j++) {
    const c = s.charCodeAt(j);
    if (c < 48 || c > 57) break;
    value = value * 10 + (c - 48);
  }
  digitsEnd = j;
  return j === i ? -1 : value;
}

const isDateSeparator = (c: number) => c === 47 /* / */ || c === 45; /* - */

/**
 * Both `2024/5/6 9:30:00` and `2024-05-06 09:30:00`, with or without the time (or its seconds): four digits of year,
 * one or two of everything else, read by hand (`^(\d{4})[/-](\d{1,2})[/-](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$`).
 */
export function parseErpDateTime(text: string): LocalDateTime | null {
  const s = text.trim();
  const year = digits(s, 0, 4);
  if (digitsEnd !== 4 || !isDateSeparator(s.charCodeAt(4))) return null;
  const month = digits(s, 5, 2);
  if (month < 0 || !isDateSeparator(s.charCodeAt(digitsEnd))) return null;
  const day = digits(s, digitsEnd + 1, 2);
  if (day < 0) return null;
  let hour = 0;
  let minute = 0;
  let second = 0;
  if (digitsEnd < s.length) {
    const t = s.charCodeAt(digitsEnd);
    if (t !== 32 /* space */ && t !== 84 /* T */) return null;
    hour = digits(s, digitsEnd + 1, 2);
    if (hour < 0 || s.charCodeAt(digitsEnd) !== 58 /* : */) return null;
    minute = digits(s, digitsEnd + 1, 2);
    if (minute < 0) return null;
    if (digitsEnd < s.length) {
      if (s.charCodeAt(digitsEnd) !== 58) return null;
      second = digits(s, digitsEnd + 1, 2);
      if (second < 0) return null;
    }
    if (digitsEnd !== s.length) return null;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return null;
  // Reject 2024/2/31 and friends: the calendar must agree (every month has 28 days).
  if (day > 28 && new Date(Date.UTC(year, month - 1, day)).getUTCMonth() !== month - 1) return null;
  return { year, month, day, hour, minute, second };
}
