import { localToIso } from '../src/domain/datetime';
import type { LocalDateTime } from '../src/erp/values';

/**
 * The ERP's zone-less wall-clock times served with the configured zone's offset. The offset is memoised per UTC day;
 * these check it against Intl directly, including DST days, where the memo must step aside.
 */
function wallIn(zone: string, iso: string): string {
  const f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const p = Object.fromEntries(f.formatToParts(new Date(iso)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}
const t = (s: string): LocalDateTime => {
  const [d, h] = s.split('T') as [string, string];
  const [year, month, day] = d.split('-').map(Number) as [number, number, number];
  const [hour, minute, second] = h.split(':').map(Number) as [number, number, number];
  return { year, month, day, hour, minute, second };
};

it.each([
  ['Asia/Shanghai', '2024-05-06T09:30:00', '2024-05-06T09:30:00+08:00'],
  ['America/New_York', '2024-03-09T23:00:00', '2024-03-09T23:00:00-05:00'],
  ['America/New_York', '2024-03-10T01:59:59', '2024-03-10T01:59:59-05:00'],
  ['America/New_York', '2024-03-10T03:00:00', '2024-03-10T03:00:00-04:00'],
  ['America/New_York', '2024-11-03T00:30:00', '2024-11-03T00:30:00-04:00'],
  ['America/New_York', '2024-11-03T02:30:00', '2024-11-03T02:30:00-05:00'],
  ['Europe/London', '2024-03-31T00:30:00', '2024-03-31T00:30:00+00:00'],
  ['Europe/London', '2024-03-31T02:30:00', '2024-03-31T02:30:00+01:00'],
  ['Asia/Kolkata', '2024-01-01T00:00:00', '2024-01-01T00:00:00+05:30'],
  ['Australia/Lord_Howe', '2024-04-07T03:00:00', '2024-04-07T03:00:00+10:30'],
])('%s %s -> %s', (zone, wall, iso) => {
  expect(localToIso(t(wall), zone)).toBe(iso);
});

/** Whether any instant shows `wall` on the zone's clock: false inside a spring-forward gap. */
function exists(zone: string, wall: string): boolean {
  const asUtc = Date.parse(`${wall}Z`);
  for (let off = -14 * 60; off <= 14 * 60; off += 15) {
    if (wallIn(zone, new Date(asUtc - off * 60_000).toISOString()) === wall) return true;
  }
  return false;
}

it('round-trips wall times across a DST year in several zones, memo cold and warm', () => {
  const zones = ['America/New_York', 'Europe/London', 'Australia/Sydney', 'Australia/Lord_Howe', 'Asia/Shanghai', 'America/Santiago'];
  const mismatches: string[] = [];
  for (const zone of zones) {
    // Twice over: the second pass is served from the per-day memo.
    for (let pass = 0; pass < 2; pass++) {
      // Every 5 h walks each day at a different hour; the DST days are among them.
      for (let h = 0; h < 366 * 24; h += 5) {
        const d = new Date(Date.UTC(2024, 0, 1) + h * 3_600_000 + 17 * 60_000);
        const wall = d.toISOString().slice(0, 19);
        const iso = localToIso(t(wall), zone);
        // Every wall time that exists must come back unchanged; one inside a spring-forward gap cannot.
        if (wallIn(zone, iso) !== wall && exists(zone, wall)) mismatches.push(`${zone} ${wall} -> ${iso}`);
      }
    }
  }
  expect(mismatches).toEqual([]);
});
