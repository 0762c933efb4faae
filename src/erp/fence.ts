import type { ErpCall, ErpLayer, Send } from './call';
import type { ErpReply } from './types';
import { UnreachableCaseError } from './unreachable';

/**
 * What a call shows or changes, as tags: `list` (every list page) and `detail:<ord>` (one service's detail). The read
 * cache tags its entries with them and invalidates by them; the write fence keeps its epochs under them. They are
 * derived here and nowhere else.
 */
export const LIST_TAG = 'list';
export const detailTag = (ord: string): string => `detail:${ord.trim()}`;

/** What a save of service `ord` changes: its detail, and every list page (a list shows its result and handler). */
export const serviceTags = (ord: string): string[] => [LIST_TAG, detailTag(ord)];

function ordOf(call: ErpCall): string | undefined {
  const ord = call.datas.find((d) => d.id === 'ord');
  return ord === undefined ? undefined : String(ord.val).trim();
}

/** The tags of a read's answer: a new read endpoint does not compile until it says which saves make it stale. */
export function readTags(call: ErpCall): string[] {
  const endpoint = call.endpoint;
  switch (endpoint) {
    case 'detail':
      return [detailTag(ordOf(call) ?? '')];
    case 'list':
      return [LIST_TAG];
    // Not reads: never cached nor coalesced, so their tags fence nothing.
    case 'login':
    case 'process':
      return [endpoint];
    default:
      throw new UnreachableCaseError(endpoint);
  }
}

/** The tags a write changes; undefined when it names no service (no `ord`), which counts as changing everything. */
export function writeTags(call: ErpCall): string[] | undefined {
  const ord = ordOf(call);
  return ord ? serviceTags(ord) : undefined;
}

/** How many tags the fence remembers; see `WriteFence`. */
const DEFAULT_MAX_TAGS = 1024;

/**
 * The write fence: an answer read before a write of what it shows must not be handed to a read that starts after the
 * write, whether by coalescing (joining the older flight) or by the read cache (storing or serving it). One per
 * process, shared by both (stack.ts).
 *
 * Positions come from one counter. A write of service X bumps X's tags when it is sent and again when it settles, so
 * a read that starts while the write is on the wire and one that starts after its reply are both "after" a read that
 * started before it. A read records `position()` when it starts; `movedSince(tags, position)` then says whether its
 * answer may predate a write of what it shows.
 *
 * Memory: at most `maxTags` marks (about 100 bytes each), dropped oldest first. A mark has to outlive every read that
 * started before it, including cache entries kept for TTL + stale, so there is no safe time to drop it; instead,
 * forgetting a mark raises a floor, and any read (or cached answer) that started below the floor counts as moved for
 * every tag. Forgetting therefore never lets an old answer through: it only costs a miss for reads that started before
 * the forgotten write, i.e. older than the last `maxTags` distinct services written.
 */
export class WriteFence implements ErpLayer {
  private seq = 0;
  private floor = 0;
  // Insertion order is epoch order: each bump re-inserts its tags at the end.
  private readonly marks = new Map<string, number>();
  // The last epoch a shared store reported per tag (observe), oldest report first.
  private readonly remote = new Map<string, string>();

  constructor(private readonly maxTags = DEFAULT_MAX_TAGS) {}

  /** Where the fence stands now: a read records it when it starts. */
  position(): number {
    return this.seq;
  }

  /** A change of `tags` (undefined: of everything) was sent or settled now. */
  bump(tags: readonly string[] | undefined): void {
    const at = ++this.seq;
    if (!tags) {
      this.marks.clear();
      this.floor = at;
      return;
    }
    for (const tag of tags) {
      this.marks.delete(tag);
      this.marks.set(tag, at);
    }
    for (const [tag, epoch] of this.marks) {
      if (this.marks.size <= this.maxTags) break;
      this.marks.delete(tag);
      this.floor = epoch;
    }
  }

  /** Whether any of `tags` was written after `since` (a `position()`): an answer read from then may be out of date. */
  movedSince(tags: readonly string[], since: number): boolean {
    if (since < this.floor) return true;
    return tags.some((tag) => (this.marks.get(tag) ?? 0) > since);
  }

  /**
   * A shared store (other replicas' saves) reports the epoch it holds for `tag` (a string that changes on every save of
   * it fleet-wide; '' while no save is recent enough to matter). A change since the last report is a write as far as
   * this process is concerned: flights and answers that started before it are no longer handed to reads after it. A
   * first report counts as a change unless it is '' (reads of never-saved services do not crowd the marks). Bounded
   * like the marks; a forgotten epoch only costs one more bump.
   */
  observe(tag: string, epoch: string): void {
    const known = this.remote.get(tag);
    if (known === epoch) return;
    this.remote.delete(tag);
    this.remote.set(tag, epoch);
    for (const old of this.remote.keys()) {
      if (this.remote.size <= this.maxTags) break;
      this.remote.delete(old);
    }
    if (known !== undefined || epoch !== '') this.bump([tag]);
  }

  /** Tags remembered now (at most `maxTags`). */
  get size(): number {
    return this.marks.size;
  }

  /** As a layer it bumps on writes: outermost, so the settling bump happens before the writer sees the reply. */
  wrap(next: Send): Send {
    return (call) => (call.kind === 'write' ? this.fenced(call, next) : next(call));
  }

  private async fenced(call: ErpCall, next: Send): Promise<ErpReply> {
    const tags = writeTags(call);
    this.bump(tags);
    try {
      return await next(call);
    } finally {
      // Settled either way (an error may have reached the ERP): what was read during the write may hold either state.
      this.bump(tags);
    }
  }
}
