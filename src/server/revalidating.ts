/**
 * A background read waits this many times the last read's duration after that read ended:
 * reads kept going back to back (a max age of 0, or one shorter than a read) would otherwise
 * take the event loop a read's work at a time (its process's fork alone some 6 ms) and leave
 * requests little of it; at 3 they have it at least three quarters of the time.
 */
const REST_PER_READ = 3;

/**
 * A value that is costly to read (a site's status spawns processes), shared by every request:
 * fresh for `maxAgeMs`, then served stale for up to `staleMs` more while one new read runs in
 * the background (HTTP's stale-while-revalidate), so no request waits for a read once there
 * has been one. Background reads are paced (REST_PER_READ). Older than both, or never read, a
 * request waits for the read, and requests that come meanwhile share it. A read that fails is
 * what the next request gets (and starts another read), so a broken state shows within one
 * request instead of hiding behind the last good value.
 */
export class Revalidating<T> {
  private held: Read<T> | undefined;
  /** The read under way, shared by everyone who asks meanwhile. */
  private reading: Read<T> | undefined;
  /** Bumped by invalidate(): a read started before it is nobody's to keep. */
  private generation = 0;
  /** No background read starts before this time (the last read's rest). */
  private restUntil = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly read: (now: number) => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly staleMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    return this.current().value;
  }

  /** As get(), with the time its read started: how old the answer is. */
  async getStamped(): Promise<{ readonly value: T; readonly at: number }> {
    const { at, value } = this.current();
    return { value: await value, at };
  }

  private current(): Read<T> {
    const now = this.clock();
    const held = this.held;
    const age = held ? now - held.at : Number.POSITIVE_INFINITY;
    if (held && age <= this.maxAgeMs) return held;
    if (held && age <= this.maxAgeMs + this.staleMs) {
      if (now >= this.restUntil) this.refresh(now);
      return held;
    }
    return this.refresh(now);
  }

  /** What is held no longer counts (an apply changed the site): the next get waits for a read. */
  invalidate(): void {
    this.held = undefined;
    this.reading = undefined;
    this.restUntil = Number.NEGATIVE_INFINITY;
    this.generation++;
  }

  /** How old the value is that get() would serve now, in ms; undefined before the first read. */
  age(): number | undefined {
    return this.held ? this.clock() - this.held.at : undefined;
  }

  private refresh(now: number): Read<T> {
    if (this.reading) return this.reading;
    const reading = { at: now, value: this.read(now) };
    const generation = this.generation;
    this.reading = reading;
    // Held once it settles, failure included; a stale value stays until then.
    const settle = () => {
      if (generation !== this.generation) return;
      const ended = this.clock();
      this.reading = undefined;
      this.held = reading;
      this.restUntil = ended + REST_PER_READ * (ended - now);
    };
    reading.value.then(settle, settle);
    return reading;
  }
}

/** A value's read: when it started, and what it gives. */
interface Read<T> {
  readonly at: number;
  readonly value: Promise<T>;
}
