import { ConfigError, loadConfig } from './config';
import { loadFieldMap } from './domain/field-map';
import { createErpStack } from './erp/stack';
import { erpStackOptions } from './server/erp-options';

/**
 * `npm run probe`: logs in to the configured ERP, reads one list page and one detail, and prints the column and field
 * ids found beside the field map, flagging what is unmapped, so an operator can write ZB_FIELD_MAP in minutes.
 * Prints ids, captions and types only: no record contents, no credentials.
 */
/** ERP id -> every field of ours it feeds (one ERP field can feed two, e.g. a picker's id and name). */
function invert(section: Record<string, string | undefined>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [ours, erp] of Object.entries(section)) if (erp) out.set(erp, out.has(erp) ? `${out.get(erp)}, ${ours}` : ours);
  return out;
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (!config.ZB_BASE_URL || !config.ZB_USER || !config.ZB_PASSWORD) {
    throw new ConfigError('probe needs ZB_BASE_URL, ZB_USER and ZB_PASSWORD');
  }
  const map = loadFieldMap(config.ZB_FIELD_MAP);
  // The operator's own settings, so the probe meets the ERP exactly as the server would.
  const stack = createErpStack(erpStackOptions(config, config.ZB_BASE_URL, { user: config.ZB_USER, password: config.ZB_PASSWORD, serialnum: config.ZB_SERIALNUM }));
  try {
    const ctx = { auth: stack.serviceSession! };
    const table = await stack.client.list(ctx, [{ id: 'pagesize', val: '5' }]);
    const listMapped = invert(map.list);
    console.log(`list.asp: ${table.page.recordCount} records, ${table.columns.length} columns`);
    for (const c of table.columns) console.log(`  ${c.id.padEnd(16)} ${c.dbtype.padEnd(7)} -> ${listMapped.get(c.id) ?? 'UNMAPPED'}`);
    for (const [ours, erp] of Object.entries(map.list)) {
      if (!table.columns.some((c) => c.id === erp) && table.columns.length > 0) console.log(`  (map) ${ours} -> '${erp}' NOT IN THE LIST`);
    }
    const first = table.rows[0]?.[map.list.id ?? 'ord'];
    if (!first) {
      console.log('no rows to read a detail from');
      return;
    }
    const detail = await stack.client.detail(ctx, first);
    if (detail.kind !== 'bill') {
      console.log(`add.asp answered a message: ${detail.message.text}`);
      return;
    }
    const detailMapped = invert(map.detail);
    console.log(`add.asp (ord ${first}): ${detail.bill.groups.length} groups`);
    for (const g of detail.bill.groups) {
      for (const f of g.fields) {
        console.log(`  ${g.id.padEnd(10)} ${f.id.padEnd(16)} ${f.type.padEnd(9)} ${f.caption.padEnd(10)} value:${f.value === '' ? 'empty' : 'set'} -> ${detailMapped.get(f.id) ?? 'UNMAPPED'}`);
      }
    }
    const present = new Set(detail.bill.groups.flatMap((g) => g.fields.map((f) => f.id)));
    for (const [ours, erp] of Object.entries(map.detail)) if (!present.has(erp)) console.log(`  (map) ${ours} -> '${erp}' NOT IN THE DETAIL`);
  } finally {
    await stack.close();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exit(1);
});
