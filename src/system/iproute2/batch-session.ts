import type { RunOptions } from "../runner.js";
import { toolFailed } from "../runner.js";
import type { Session } from "../session.js";

/**
 * `ip -json -batch -` on a pipe: command lines in, for as long as the process lives, so a
 * reaction or a read costs no process. ip prints one JSON line for each `show` and nothing for
 * a change, and flushes after each; a request ends with `link show dev lo` (lo is in every
 * namespace), so its line says every line before it is done. As with a batch of its own, the
 * first line that fails ends the process: the request fails with what ip said, and the next one
 * starts a new process. One request at a time.
 */
export class IpBatchSession {
  private session: Session | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Whether the process has made a change: it then knows devices by name (see forgetDevices). */
  private changed = false;
  /** The request waiting for its lines; undefined between requests. */
  private waiting:
    | {
        readonly session: Session;
        readonly expect: number;
        readonly lines: string[];
        readonly stderr: string[];
        readonly done: (lines: string[]) => void;
        readonly failed: (code: number | undefined) => void;
      }
    | undefined;

  constructor(
    /** Starts `ip <flags> -batch -` in the target's namespace. */
    private readonly start: (args: readonly string[]) => Session,
    /** ip's global options, -json among them. */
    private readonly flags: readonly string[],
    private readonly netns: string | undefined,
  ) {}

  /**
   * Runs the lines, which are all `show`s (each prints one line) or all changes (none prints);
   * resolves with what the shows printed, one line each.
   */
  run(input: string, options: RunOptions = {}): Promise<string[]> {
    const lines = input.split("\n").filter((l) => l.trim() !== "");
    const prints = lines.filter(printsOneLine).length;
    if (prints !== 0 && prints !== lines.length)
      throw new Error("unreachable: an ip session request mixes shows and changes");
    if (prints === 0) this.changed = true;
    const turn = this.queue.then(() => this.request(lines, prints, options));
    this.queue = turn.catch(() => undefined);
    return turn;
  }

  /**
   * ip resolves a device's name to its index once and keeps it for as long as it runs: after a
   * device went (and may come back under its name with another index, as OpenVPN's tun does), a
   * process that made changes by name is stopped, so the next change starts one that never
   * knew the old index. Listing needs no names: those processes stay.
   */
  forgetDevices(): void {
    if (!this.changed) return;
    this.changed = false;
    this.stop();
    // Started now, not when the device is back: the change that answers its return waits for
    // no process to start.
    this.open();
  }

  /** Stops the process; a later request starts another. */
  stop(): void {
    this.session?.stop();
    this.session = undefined;
  }

  private request(lines: readonly string[], prints: number, options: RunOptions) {
    const session = this.session ?? this.open();
    return new Promise<string[]>((resolve, reject) => {
      const stderr: string[] = [];
      // The process ended before the fence: a line failed (or ip is missing); as a spawned
      // batch would, it names the command and what ip said.
      const failed = (code: number | undefined) =>
        reject(toolFailed("ip", this.args(), this.netns, options, code, stderr.join("\n")));
      this.waiting = { session, expect: prints + 1, lines: [], stderr, done: resolve, failed };
      session.write(`${[...lines, FENCE].join("\n")}\n`);
    });
  }

  private args(): string[] {
    return [...this.flags, "-batch", "-"];
  }

  private open(): Session {
    const session = this.start(this.args());
    this.session = session;
    // Each listener answers only a request made on its own process.
    const mine = () => (this.waiting?.session === session ? this.waiting : undefined);
    session.onLine((line) => {
      const w = mine();
      if (!w) return;
      w.lines.push(line);
      if (w.lines.length < w.expect) return;
      this.waiting = undefined;
      w.done(w.lines.slice(0, -1));
    });
    session.onErrorLine((line) => mine()?.stderr.push(line));
    void session.exited.then((code) => {
      if (this.session === session) this.session = undefined;
      const w = mine();
      this.waiting = w ? undefined : this.waiting;
      w?.failed(code);
    });
    return session;
  }
}

const FENCE = "link show dev lo";

/** Whether ip prints a line for this batch line: the shows do, the changes do not. */
export function printsOneLine(line: string): boolean {
  const verb = line.trim().split(/\s+/)[1] ?? "show";
  return verb === "show" || verb === "list" || verb === "lst";
}
