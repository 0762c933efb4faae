/**
 * What the domain asks of the data layer below it, in its own terms. The ERP stack implements these (erp/stack.ts),
 * the composition root hands them in: the domain never knows whether a read cache or coalescing is there at all.
 */
export interface ServiceCache {
  /**
   * A save of service `id` was sent and has settled, whatever its outcome. Once this resolves, no answer read before
   * the save is handed to a read that starts after it (no cached entry, no shared in-flight read).
   */
  afterSave(id: string): Promise<void>;
}
