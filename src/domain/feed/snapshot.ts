import { createHash } from 'node:crypto';
import type { ListRow, RowChange, WindowRow } from './model';

/**
 * A row's fingerprint: its raw values by column id (column order does not matter), hashed. Two polls that show a
 * service with the same fingerprint show it the same; the ERP's own text is compared, never our mapped reading of it.
 */
export function fingerprint(row: ListRow): string {
  const hash = createHash('sha1');
  for (const column of Object.keys(row).sort()) hash.update(column).update('\u0000').update(row[column] ?? '').update('\u0001');
  return hash.digest('base64');
}

/**
 * What one side of the feed last saw of a key's window: id -> fingerprint, nothing else (about 60 bytes a row). The
 * poller keeps one to diff its polls; every subscriber side keeps one to tell what a message changes for its
 * subscribers, so a message that arrives twice, or a snapshot after a gap, reports each change once.
 */
export class WindowView {
  private rows = new Map<string, string>();
  private seeded = false;

  /** Whether a first window has been taken (the baseline); before it, no change can be told. */
  get ready(): boolean {
    return this.seeded;
  }

  get size(): number {
    return this.rows.size;
  }

  has(id: string): boolean {
    return this.rows.has(id);
  }

  /**
   * Takes `window` as the view, and returns what changed against the previous one: ADDED and UPDATED in window order
   * (newest first), then REMOVED. The first window is the baseline and changes nothing.
   */
  replace(window: readonly WindowRow[]): RowChange[] {
    const next = new Map<string, string>();
    const changes: RowChange[] = [];
    for (const { id, row } of window) {
      if (next.has(id)) continue;
      const print = fingerprint(row);
      next.set(id, print);
      const before = this.rows.get(id);
      if (before === undefined) changes.push({ kind: 'ADDED', id, row });
      else if (before !== print) changes.push({ kind: 'UPDATED', id, row });
    }
    for (const id of this.rows.keys()) if (!next.has(id)) changes.push({ kind: 'REMOVED', id });
    this.rows = next;
    const baseline = !this.seeded;
    this.seeded = true;
    return baseline ? [] : changes;
  }

  /**
   * One change another view reported, as this view sees it: ADDED or UPDATED by whether this view has the id, nothing
   * when this view already shows that row (or never had a removed one).
   */
  apply(change: RowChange): RowChange | undefined {
    if (change.kind === 'REMOVED' || !change.row) {
      return this.rows.delete(change.id) ? { kind: 'REMOVED', id: change.id } : undefined;
    }
    const print = fingerprint(change.row);
    const before = this.rows.get(change.id);
    if (before === print) return undefined;
    this.rows.set(change.id, print);
    return { kind: before === undefined ? 'ADDED' : 'UPDATED', id: change.id, row: change.row };
  }
}
