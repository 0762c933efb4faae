import type { AfterSaleService } from '../model';

/** The change feed in our terms: what a subscriber receives, and what travels between pollers and subscribers. */

export type ChangeKind = 'ADDED' | 'UPDATED' | 'REMOVED';

/** One event of one subscription (the schema's AfterSaleServiceChange). */
export interface ServiceChange {
  kind: ChangeKind;
  id: string;
  /** The service as the event saw it; null when REMOVED. A list row's model: detail fields go through the loader. */
  service: AfterSaleService | null;
  /** Opaque, distinct and ordered within the subscription. */
  cursor: string;
}

/** A list row as the ERP sent it, by column id: the diff compares these raw values, never mapped objects. */
export type ListRow = Readonly<Record<string, string>>;

/** A row of a poll's window with its id (read through the field map's id column). */
export interface WindowRow {
  id: string;
  row: ListRow;
}

/** One difference between two polls of a key: the new row for ADDED/UPDATED, none for REMOVED. */
export interface RowChange {
  kind: ChangeKind;
  id: string;
  row?: ListRow;
}

/** Where a message comes from: one poller's lifetime (`epoch`), and its position in that poller's messages (`seq`). */
export interface MessageOrigin {
  key: string;
  epoch: string;
  seq: number;
}

/**
 * What goes over the events bus (ports.ts), plain data so that a bus between processes can carry it:
 * - `snapshot`: the whole window of a poll (the poller's first, and any asked for by `sync`): a subscriber side that
 *   has no view yet adopts it silently (the baseline); one that has a view reports the differences (after a gap or a
 *   change of poller, so nothing is lost);
 * - `changes`: the differences of one poll against the previous one;
 * - `touched`: a save through this subgraph of a service (UPDATED at once for views that hold it; the poller polls early);
 * - `sync`: a subscriber side missed messages and asks the poller for a `snapshot`;
 * - `failed`: the key's ERP identity was refused (a user session that expired or was revoked): its subscriptions end.
 */
export type FeedMessage =
  | (MessageOrigin & { type: 'snapshot'; rows: readonly WindowRow[] })
  | (MessageOrigin & { type: 'changes'; changes: readonly RowChange[] })
  | { type: 'touched'; key: string; id: string }
  | { type: 'sync'; key: string }
  | { type: 'failed'; key: string; reason: 'unauthenticated' };
