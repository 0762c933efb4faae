import type { DocumentNode } from 'graphql';
import { LRUCache } from 'lru-cache';

/**
 * Apollo's caches of client-sent text, bounded by what they really retain. Apollo's default document store measures a
 * parsed document by its JSON size, which leaves out the source text every AST node's `loc` keeps alive: documents
 * padded with comments (no tokens, so no token limit applies) were measured at a few bytes and retained at 100 KB each.
 * Here a document costs its source (UTF-16, two bytes a character) plus its AST at the heap size measured for graphql-js
 * ASTs, about four times their JSON length; a persisted query costs its text.
 */
export const AST_HEAP_PER_JSON_BYTE = 5;

export function documentBytes(doc: DocumentNode): number {
  const source = doc.loc?.source.body.length ?? 0;
  return source * 2 + JSON.stringify(doc).length * AST_HEAP_PER_JSON_BYTE;
}

/** Apollo's KeyValueCache shape (get/set/delete) over an LRU bounded in bytes. Entries larger than the bound are not kept. */
export class ByteBoundedCache<V extends NonNullable<unknown>> {
  private readonly lru: LRUCache<string, V>;

  constructor(maxBytes: number, sizeOf: (value: V, key: string) => number) {
    this.lru = new LRUCache<string, V>({ maxSize: maxBytes, sizeCalculation: (value, key) => Math.max(1, sizeOf(value, key) + key.length * 2) });
  }

  async get(key: string): Promise<V | undefined> {
    return this.lru.get(key);
  }

  async set(key: string, value: V, options?: { ttl?: number | null }): Promise<void> {
    // Apollo gives ttl in seconds.
    this.lru.set(key, value, options?.ttl ? { ttl: options.ttl * 1000 } : undefined);
  }

  async delete(key: string): Promise<boolean> {
    return this.lru.delete(key);
  }

  /** Bytes held, by the size function: what tests assert the bound on. */
  get bytes(): number {
    return this.lru.calculatedSize;
  }
}

export function documentCache(maxBytes: number): ByteBoundedCache<DocumentNode> {
  return new ByteBoundedCache<DocumentNode>(maxBytes, documentBytes);
}

export function queryTextCache(maxBytes: number): ByteBoundedCache<string> {
  return new ByteBoundedCache<string>(maxBytes, (text) => text.length * 2);
}
