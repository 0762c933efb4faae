/** Request parameters by id. The last value wins when an id repeats, as in the ERP's loop over `datas`. */
export type Datas = Map<string, string>;

export function readDatas(raw: unknown): Datas {
  const out: Datas = new Map();
  if (!Array.isArray(raw)) return out;
  for (const item of raw) {
    if (item === null || typeof item !== 'object') continue;
    const { id, val } = item as { id?: unknown; val?: unknown };
    if (typeof id !== 'string') continue;
    out.set(id, val === undefined || val === null ? '' : String(val));
  }
  return out;
}
