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
type DayOffset = number | typeof VARIES;

/**
 * Zone offset per UTC day, for one zone. Intl's formatToParts costs two dozen objects per call and a list of 20
 * services carries several dates each; dates cluster on few days, and all but a DST day have one offset from start to
 * end. Keyed by the day number (no key string per date), and the last day asked answers first: localToIso asks twice
 * per date, nearly always for the same day. Zones come from the configuration only, so there are few of these.
 */
class ZoneOffsets {
  private lastDay = Number.NaN;
  private last: DayOffset = 0;
  private readonly days = new LRUCache<number, DayOffset>({ max: 4096 });

  constructor(private readonly zone: string) {}

  minutesAt(utcMs: number): number {
    const day = Math.floor(utcMs / DAY_MS);
    let known: DayOffset | undefined;
    if (day === this.lastDay) known = this.last;
    else {
      known = this.days.get(day);
      if (known === undefined) {
        const start = exactOffsetMinutes(this.zone, day * DAY_MS);
        known = start === exactOffsetMinutes(this.zone, (day + 1) * DAY_MS - 1000) ? start : VARIES;
        this.days.set(day, known);
      }
      this.lastDay = day;
      this.last = known;
    }
    return known === VARIES ? exactOffsetMinutes(this.zone, utcMs) : known;
  }
}

const zoneOffsets = new Map<string, ZoneOffsets>();

function offsetsOf(zone: string): ZoneOffsets {
  let offsets = zoneOffsets.get(zone);
  if (!offsets) zoneOffsets.set(zone, (offsets = new ZoneOffsets(zone)));
  return offsets;
}

const pad = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
/** '00'..'99': every two-digit part of a date but the year, without a string made per part. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => pad(i));
const two = (n: number) => TWO_DIGITS[Math.abs(n)] ?? pad(n);

export function localToIso(t: LocalDateTime, zone: string): string {
  const offsets = offsetsOf(zone);
  const wall = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second);
  // Two passes settle the offset across a DST change.
  let offset = offsets.minutesAt(wall);
  offset = offsets.minutesAt(wall - offset * 60000);
  const sign = offset >= 0 ? '+' : '-';
  return `${pad(t.year, 4)}-${two(t.month)}-${two(t.day)}T${two(t.hour)}:${two(t.minute)}:${two(t.second)}${sign}${two(Math.trunc(offset / 60))}:${two(offset % 60)}`;
}
