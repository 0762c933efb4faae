export type Endpoint = 'login' | 'list' | 'detail' | 'process' | 'unknown';

/** One request as the simulated ERP received it: what tests assert on instead of timing. */
export interface CallRecord {
  seq: number;
  endpoint: Endpoint;
  path: string;
  cmdkey: string;
  /** `datas` flattened to id -> value text, in the order sent. */
  datas: Record<string, string>;
  session: string;
  contentType: string;
  /** The fault injected into this call, if any. */
  fault?: string;
  /** A save the ERP stored (chuli.asp accepted it): set once it is processed. */
  stored?: true;
}

/**
 * The call log, plus in-flight counters: `peak` is the most requests the simulator was serving at once, which is how
 * tests prove a client-side concurrency bound without timing anything.
 */
export class CallLog {
  private records: CallRecord[] = [];
  private seq = 0;
  private inFlight = new Map<Endpoint, number>();
  private peaks = new Map<Endpoint, number>();
  private totalInFlight = 0;
  private totalPeak = 0;
  private served = 0;

  record(entry: Omit<CallRecord, 'seq'>): CallRecord {
    const record = { seq: ++this.seq, ...entry };
    this.records.push(record);
    return record;
  }

  enter(endpoint: Endpoint): void {
    const n = (this.inFlight.get(endpoint) ?? 0) + 1;
    this.inFlight.set(endpoint, n);
    this.peaks.set(endpoint, Math.max(this.peaks.get(endpoint) ?? 0, n));
    this.totalInFlight++;
    this.totalPeak = Math.max(this.totalPeak, this.totalInFlight);
  }

  leave(endpoint: Endpoint): void {
    this.inFlight.set(endpoint, (this.inFlight.get(endpoint) ?? 1) - 1);
    this.totalInFlight--;
  }

  /** One request was served: `ms` from its arrival to its reply written (or its socket closed). */
  servedFor(ms: number): void {
    this.served += ms;
  }

  /**
   * Milliseconds of service given so far, summed over requests (not reset by `clear()`): over a window, divided by the
   * requests served, the latency the clients actually got from the ERP (its configured latency plus its own work).
   */
  servedMs(): number {
    return this.served;
  }

  all(): CallRecord[] {
    return [...this.records];
  }

  of(endpoint: Endpoint): CallRecord[] {
    return this.records.filter((r) => r.endpoint === endpoint);
  }

  count(endpoint?: Endpoint): number {
    return endpoint ? this.of(endpoint).length : this.records.length;
  }

  peak(endpoint?: Endpoint): number {
    return endpoint ? (this.peaks.get(endpoint) ?? 0) : this.totalPeak;
  }

  clear(): void {
    this.records = [];
    this.peaks.clear();
    this.totalPeak = this.totalInFlight;
    for (const [endpoint, n] of this.inFlight) this.peaks.set(endpoint, n);
  }
}
