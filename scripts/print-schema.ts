/**
 * The published subgraph SDL and its breaking-change gate.
 *
 *   npm run schema:print                       writes subgraph.graphql (exactly what `_service { sdl }` returns);
 *                                              refuses while a breaking change is not recorded in schema-changes.json
 *   npm run schema:print -- --accept 0.3.0     records the new breaking changes under that version, then writes
 *   npm run schema:check                       CI: fails on an unrecorded breaking change against subgraph.graphql,
 *                                              and on a subgraph.graphql that is not the current SDL
 *
 * Breaking and dangerous changes are graphql-js `findBreakingChanges` / `findDangerousChanges` between the committed
 * SDL and the current one. `--sdl <file>` and `--record <file>` point at other files (tests use them).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildASTSchema, findBreakingChanges, findDangerousChanges, graphql, parse, type GraphQLSchema } from 'graphql';
import { buildSchema } from '../src/graphql/schema';

export const ROOT = join(__dirname, '..');
export const SDL_FILE = join(ROOT, 'subgraph.graphql');
export const RECORD_FILE = join(ROOT, 'schema-changes.json');

export interface SchemaChange {
  type: string;
  description: string;
}

export interface AcceptedChange extends SchemaChange {
  /** The release that made the change (CHANGELOG.md lists it there). */
  version: string;
}

export interface ChangeRecord {
  about?: string;
  accepted: AcceptedChange[];
}

export interface CheckResult {
  /** Why the check fails; empty when it passes. */
  problems: string[];
  /** Breaking changes against the committed SDL that the record does not accept. */
  unrecorded: SchemaChange[];
  dangerous: SchemaChange[];
}

/** The subgraph SDL exactly as `{ _service { sdl } }` answers it. */
export async function currentSdl(): Promise<string> {
  const result = await graphql({ schema: buildSchema(), source: '{ _service { sdl } }' });
  const sdl = (result.data as { _service?: { sdl?: unknown } } | null | undefined)?._service?.sdl;
  if (result.errors?.length || typeof sdl !== 'string') throw new Error(`_service { sdl } failed: ${result.errors?.map((e) => e.message).join('; ')}`);
  return sdl;
}

/**
 * A subgraph SDL as a plain schema, good enough to diff. `assumeValidSDL`: the printed SDL uses federation directives
 * (`@key`, `@cost`, ...) whose link-level semantics graphql-js does not know; their definitions are printed too.
 */
function toSchema(sdl: string): GraphQLSchema {
  return buildASTSchema(parse(sdl), { assumeValidSDL: true });
}

export function schemaChanges(before: string, after: string): { breaking: SchemaChange[]; dangerous: SchemaChange[] } {
  const [old, now] = [toSchema(before), toSchema(after)];
  const plain = (c: SchemaChange) => ({ type: c.type, description: c.description });
  return { breaking: findBreakingChanges(old, now).map(plain), dangerous: findDangerousChanges(old, now).map(plain) };
}

const same = (a: SchemaChange, b: SchemaChange) => a.type === b.type && a.description === b.description;

export function checkSchema(committed: string | null, current: string, record: ChangeRecord): CheckResult {
  if (committed === null) return { problems: ['no committed SDL: run `npm run schema:print` and commit subgraph.graphql'], unrecorded: [], dangerous: [] };
  const { breaking, dangerous } = schemaChanges(committed, current);
  const unrecorded = breaking.filter((c) => !record.accepted.some((a) => same(a, c)));
  const problems = unrecorded.map((c) => `breaking change not recorded in schema-changes.json: ${c.type}: ${c.description}`);
  if (committed !== current) problems.push('the committed SDL is stale: run `npm run schema:print` and commit subgraph.graphql');
  return { problems, unrecorded, dangerous };
}

export function readRecord(file: string): ChangeRecord {
  if (!existsSync(file)) return { accepted: [] };
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ChangeRecord>;
  if (!Array.isArray(parsed.accepted)) throw new Error(`${file}: "accepted" must be a list`);
  return { ...parsed, accepted: parsed.accepted };
}

function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

export async function main(args: readonly string[]): Promise<number> {
  const command = args[0];
  const sdlFile = option(args, '--sdl') ?? SDL_FILE;
  const recordFile = option(args, '--record') ?? RECORD_FILE;
  const committed = existsSync(sdlFile) ? readFileSync(sdlFile, 'utf8') : null;
  const record = readRecord(recordFile);
  const current = await currentSdl();

  if (command === 'check') {
    const { problems, dangerous } = checkSchema(committed, current, record);
    for (const c of dangerous) console.warn(`dangerous (not failing): ${c.type}: ${c.description}`);
    for (const p of problems) console.error(p);
    if (problems.length === 0) console.log(`schema:check: ${sdlFile} is current, no unrecorded breaking change`);
    return problems.length === 0 ? 0 : 1;
  }
  if (command === 'print') {
    const unrecorded = committed === null ? [] : checkSchema(committed, current, record).unrecorded;
    const version = option(args, '--accept');
    if (unrecorded.length > 0 && version === undefined) {
      for (const c of unrecorded) console.error(`breaking: ${c.type}: ${c.description}`);
      console.error('Not written. Record these in schema-changes.json (`npm run schema:print -- --accept <version>`) and in CHANGELOG.md, or undo them.');
      return 1;
    }
    if (unrecorded.length > 0 && version !== undefined) {
      const next: ChangeRecord = { ...record, accepted: [...record.accepted, ...unrecorded.map((c) => ({ version, ...c }))] };
      writeFileSync(recordFile, `${JSON.stringify(next, null, 2)}\n`);
      console.log(`recorded ${unrecorded.length} breaking change(s) under ${version} in ${recordFile}`);
    }
    writeFileSync(sdlFile, current);
    console.log(`wrote ${sdlFile}`);
    return 0;
  }
  console.error('usage: print-schema.ts print [--accept <version>] | check   [--sdl <file>] [--record <file>]');
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(2);
    },
  );
}
