import type { CallContext, ErpClient } from '../../erp/client';
import { listDatas, type ValidListQuery } from '../filter';
import type { ServiceMapper } from '../mapping';
import type { AfterSaleService } from '../model';
import type { ListRow, WindowRow } from './model';

/** One poll's read of a key's window. */
export interface WindowRead {
  /** The window, newest first, at most `maxRows`, each id once. */
  rows: WindowRow[];
  /**
   * False when the list moved while it was being paged (its total changed between pages): rows may have shifted
   * across a page boundary, so one could be missing or doubled. The poll is discarded rather than reported as
   * REMOVED/ADDED noise.
   */
  stable: boolean;
}

/** Where the feed reads a key's window: the list (ListWindow), or a stand-in in tests. */
export interface WindowSource {
  canSortById(): boolean;
  read(ctx: CallContext, query: ValidListQuery, maxRows: number): Promise<WindowRead>;
  toService(row: ListRow): AfterSaleService | null;
}

/**
 * The feed's view of the list: the filter's list pages, newest first, through the same ERP client (session, budget,
 * breaker) and the same list parameters as `afterSaleServices` (filter.ts `listDatas`), with rows kept raw for the diff
 * and mapped by the same mapper as the list when an event is handed out.
 */
export class ListWindow implements WindowSource {
  constructor(
    private readonly client: ErpClient,
    private readonly mapper: Pick<ServiceMapper, 'idColumn' | 'listColumn' | 'fromRow'>,
  ) {}

  /** Whether list.asp can sort by id (the field map has the column): the feed then watches the newest records. */
  canSortById(): boolean {
    return this.mapper.listColumn('id') !== undefined;
  }

  /**
   * Reads up to `maxRows` rows of `query` (its `pageSize` is the page the feed asks for), page after page; stops at a
   * short page or the list's end.
   */
  async read(ctx: CallContext, query: ValidListQuery, maxRows: number): Promise<WindowRead> {
    const idColumn = this.mapper.idColumn;
    const rows: WindowRow[] = [];
    const seen = new Set<string>();
    let total: number | undefined;
    for (let page = 1; rows.length < maxRows; page++) {
      const table = await this.client.list(ctx, listDatas({ ...query, page }, (field) => this.mapper.listColumn(field)));
      const count = table.page.recordCount;
      if (total === undefined) total = count;
      else if (count !== total) return { rows, stable: false };
      for (const row of table.rows) {
        const id = (row[idColumn] ?? '').trim();
        if (id === '' || seen.has(id)) continue;
        seen.add(id);
        rows.push({ id, row });
        if (rows.length >= maxRows) break;
      }
      if (table.rows.length < query.pageSize || page * query.pageSize >= total) break;
    }
    return { rows, stable: true };
  }

  /** A row as the list maps it (list fields known; the others through the detail loader). */
  toService(row: ListRow): AfterSaleService | null {
    return this.mapper.fromRow({ ...row });
  }
}
