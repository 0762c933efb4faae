/** A FIFO counting semaphore: requests over an IIS worker pool's size wait their turn. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  /** The limit is read on every acquire and release, so a changed setting applies to the next request; 0 = none. */
  constructor(private readonly limit: () => number) {}

  private free(): boolean {
    const limit = this.limit();
    return limit <= 0 || this.active < limit;
  }

  async acquire(): Promise<void> {
    if (this.waiting.length === 0 && this.free()) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    this.active--;
    this.drain();
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.free()) {
      this.active++;
      this.waiting.shift()!();
    }
  }
}
