import type { Endpoint } from './call-log';
import { seededRandom, type Random } from './random';

/**
 * What can go wrong with a real IIS/ASP ERP, on demand.
 * - `html`: a component failure page (HTTP 200, text/html)
 * - `http500`: IIS's own 500 page
 * - `status11`: an unhandled script error, status as the string "11"
 * - `session10`: a session error (status 10) for the token used
 * - `drop`: the socket is destroyed before anything is processed
 * - `dropAfterProcess`: the request is fully processed (a save is stored), then the socket is destroyed unanswered
 * - `stall`: no answer at all until the client gives up
 * - `silentSave`: a save answers success and stores nothing (seen by public clients)
 * - `badJson`: a truncated JSON reply
 * - `hold`: the call is executed when it arrives (a read's answer is fixed then), and its reply is sent only after the
 *   latency plus `delayMs`, and, when injected through `hold()`, after its `release()`. A save that lands meanwhile is
 *   not in that answer: what a real ERP does with a query it has already run while the reply is still on its way.
 *   Deterministic races: `const h = sim.faults.hold({ endpoint: 'detail' })`, wait until `h.held === 1`, do the
 *   write, then `h.release()`. Over the admin API: `{"inject": [{"kind": "hold", "delayMs": 500}]}`, and
 *   `POST /__sim/holds/release` releases every held reply.
 */
export const FAULT_KINDS = ['html', 'http500', 'status11', 'session10', 'drop', 'dropAfterProcess', 'stall', 'silentSave', 'badJson', 'hold'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ScriptedFault {
  kind: FaultKind;
  /** Only calls to this endpoint; any endpoint but login when unset. */
  endpoint?: Endpoint;
  /** How many matching calls it hits; 1 when unset. */
  times?: number;
  /** Extra latency for this fault only (e.g. a latency spike), in ms. */
  delayMs?: number;
}

/** The calls caught by one `hold()`. */
export interface HeldReplies {
  /** How many caught calls have been executed and are holding their replies (released ones included). */
  readonly held: number;
  /** Sends every reply this hold caught, and lets the ones it catches later through at once. */
  release(): void;
}

/** What `draw` hands the server for a hold: when to send, and whom to tell the reply is computed. */
export interface HoldGate {
  readonly released: Promise<void>;
  caught(): void;
}

class Gate implements HeldReplies, HoldGate {
  held = 0;
  readonly released: Promise<void>;
  readonly release: () => void;

  constructor() {
    let open: () => void = () => undefined;
    this.released = new Promise<void>((resolve) => {
      open = () => resolve();
    });
    this.release = open;
  }

  caught(): void {
    this.held++;
  }
}

export interface FaultSettings {
  /** Added to every call, in ms. */
  latencyMs: number;
  /** Calls served at once; more wait in line like requests for a busy IIS worker pool. 0 = no cap. */
  maxConcurrent: number;
  /** Share of calls (0..1) that get a random fault from `randomKinds`. Login is spared. */
  errorRate: number;
  randomKinds: FaultKind[];
  seed: number;
}

export const DEFAULT_FAULTS: FaultSettings = {
  latencyMs: 0,
  maxConcurrent: 0,
  errorRate: 0,
  randomKinds: ['html', 'status11', 'drop', 'http500'],
  seed: 1,
};

export class FaultInjector {
  private settings: FaultSettings = { ...DEFAULT_FAULTS };
  private scripted: Array<Required<Omit<ScriptedFault, 'endpoint' | 'delayMs'>> & ScriptedFault & { gate?: Gate }> = [];
  private readonly gates = new Set<Gate>();
  private random: Random = seededRandom(DEFAULT_FAULTS.seed);

  configure(settings: Partial<FaultSettings>): void {
    this.settings = { ...this.settings, ...settings };
    if (settings.seed !== undefined) this.random = seededRandom(settings.seed);
  }

  get current(): FaultSettings {
    return { ...this.settings };
  }

  /** Queue a fault for the next matching call(s): deterministic, for tests. */
  inject(fault: ScriptedFault): void {
    this.scripted.push({ ...fault, times: fault.times ?? 1 });
  }

  /**
   * Holds the next matching call(s) (`times`, 1 when unset; `endpoint`, any but login when unset): each is executed on
   * arrival and answered once `release()` is called (and its latency plus `delayMs` have passed).
   */
  hold(options: Omit<ScriptedFault, 'kind'> = {}): HeldReplies {
    const gate = new Gate();
    this.gates.add(gate);
    void gate.released.then(() => this.gates.delete(gate));
    this.scripted.push({ ...options, kind: 'hold', times: options.times ?? 1, gate });
    return gate;
  }

  /** Lets every held reply go (a reset, or the simulator closing, never leaves a client hanging). */
  releaseHolds(): void {
    for (const gate of this.gates) gate.release();
    this.gates.clear();
  }

  reset(): void {
    this.releaseHolds();
    this.settings = { ...DEFAULT_FAULTS };
    this.scripted = [];
    this.random = seededRandom(DEFAULT_FAULTS.seed);
  }

  /** Decides the fault for one call, consuming a scripted one first. */
  draw(endpoint: Endpoint): { kind: FaultKind; delayMs: number; gate?: HoldGate } | undefined {
    const index = this.scripted.findIndex((f) => (f.endpoint ? f.endpoint === endpoint : endpoint !== 'login'));
    if (index >= 0) {
      const fault = this.scripted[index]!;
      fault.times--;
      if (fault.times <= 0) this.scripted.splice(index, 1);
      return { kind: fault.kind, delayMs: fault.delayMs ?? 0, ...(fault.gate ? { gate: fault.gate } : {}) };
    }
    if (endpoint === 'login' || this.settings.errorRate <= 0 || this.settings.randomKinds.length === 0) return undefined;
    if (this.random() >= this.settings.errorRate) return undefined;
    const kind = this.settings.randomKinds[Math.floor(this.random() * this.settings.randomKinds.length)]!;
    return { kind, delayMs: 0 };
  }
}
