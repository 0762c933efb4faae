import { LRUCache } from 'lru-cache';
import type { LocalDateTime } from '../erp/values';

/** The ERP writes wall-clock time with no zone; we serve ISO 8601 with the offset of the configured zone. */

const formatters = new Map<string, Intl.DateTimeFormat>();

function exactOffsetMinutes(zone: string, utcMs: number): number {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(zone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(utcMs)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return Math.round((asUtc - Math.floor(utcMs / 1000) * 1000) / 60000);
}

const DAY_MS = 86_400_000;
const VARIES = Symbol('offset changes during this day');
// Zone offset per (zone, UTC day). Intl's formatToParts costs two dozen objects per call and a list of 20 services
// carries several dates each; dates cluster on few days, and all but a DST day have one offset from start to end.
const dayOffsets = new LRUCache<string, number | typeof VARIES>({ max: 4096 });

function offsetMinutes(zone: string, utcMs: number): number {
  const day = Math.floor(utcMs / DAY_MS);
  const key = `${zone}|${day}`;
  let known = dayOffsets.get(key);
  if (known === undefined) {
    const start = exactOffsetMinutes(zone, day * DAY_MS);
    known = start === exactOffsetMinutes(zone, (day + 1) * DAY_MS - 1000) ? start : VARIES;
    dayOffsets.set(key, known);
  }
  return known === VARIES ? exactOffsetMinutes(zone, utcMs) : known;
}

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');

export function localToIso(t: LocalDateTime, zone: string): string {
  const wall = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  // Two passes settle the offset across a DST change.
  let offset = offsetMinutes(zone, wall);
  offset = offsetMinutes(zone, wall - offset * 60000);
  const sign = offset >= 0 ? '+' : '-';
  return `${pad(t.year, 4)}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}:${pad(t.minute)}:${pad(t.second)}${sign}${pad(Math.trunc(offset / 60))}:${pad(offset % 60)}`;
}
