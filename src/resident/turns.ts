/**
 * One piece of work at a time, in order, except that urgent work (a reaction) goes before
 * whatever waits, and the work under way can ask whether some is waiting (a reconcile that
 * has not changed anything yet then gives way).
 */
export class Turns {
  private readonly waiting: { readonly urgent: boolean; readonly go: () => void }[] = [];
  private busy = false;

  get urgentWaiting(): boolean {
    return this.waiting.some((w) => w.urgent);
  }

  async run<T>(work: () => Promise<T>, urgent = false): Promise<T> {
    if (this.busy) {
      await new Promise<void>((go) => {
        const entry = { urgent, go };
        const at = urgent ? this.waiting.findIndex((w) => !w.urgent) : -1;
        if (at < 0) this.waiting.push(entry);
        else this.waiting.splice(at, 0, entry);
      });
    }
    this.busy = true;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next.go();
      else this.busy = false;
    }
  }

  /** Resolves once no work is under way or waiting. */
  async idle(): Promise<void> {
    while (this.busy) await this.run(async () => undefined);
  }
}
