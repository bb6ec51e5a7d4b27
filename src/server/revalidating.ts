/**
 * A value that is costly to read (a site's status spawns processes), shared by every request:
 * fresh for `maxAgeMs`, then served stale for up to `staleMs` more while one new read runs in
 * the background (HTTP's stale-while-revalidate), so no request waits for a read once there
 * has been one. Older than both, or never read, a request waits for the read, and requests
 * that come meanwhile share it. A read that fails is what the next request gets (and starts
 * another read), so a broken state shows within one request instead of hiding behind the last
 * good value.
 */
export class Revalidating<T> {
  private held: { readonly at: number; readonly value: Promise<T> } | undefined;
  /** The read under way, shared by everyone who asks meanwhile. */
  private reading: Promise<T> | undefined;
  /** Bumped by invalidate(): a read started before it is nobody's to keep. */
  private generation = 0;

  constructor(
    private readonly read: (now: number) => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly staleMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const now = this.clock();
    const held = this.held;
    const age = held ? now - held.at : Number.POSITIVE_INFINITY;
    if (held && age <= this.maxAgeMs) return held.value;
    const fresh = this.refresh(now);
    return held && age <= this.maxAgeMs + this.staleMs ? held.value : fresh;
  }

  /** What is held no longer counts (an apply changed the site): the next get waits for a read. */
  invalidate(): void {
    this.held = undefined;
    this.reading = undefined;
    this.generation++;
  }

  /** How old the value is that get() would serve now, in ms; undefined before the first read. */
  age(): number | undefined {
    return this.held ? this.clock() - this.held.at : undefined;
  }

  private refresh(now: number): Promise<T> {
    if (this.reading) return this.reading;
    const reading = this.read(now);
    const generation = this.generation;
    this.reading = reading;
    // Held once it settles, failure included; a stale value stays until then.
    const settle = () => {
      if (generation !== this.generation) return;
      this.reading = undefined;
      this.held = { at: now, value: reading };
    };
    reading.then(settle, settle);
    return reading;
  }
}
