/**
 * How long a resident's shutdown may take once asked. Its steps end within seconds (a
 * reconcile under way finishes, probers and tool sessions stop); a step that is still pending
 * after this is stuck, and waiting longer only makes systemd wait its TimeoutStopSec (90 s)
 * before it kills, and a restart wait as long.
 */
export const SHUTDOWN_BOUND_MS = 10_000;

/** A resident command's way down on SIGTERM or SIGINT (serve, watch and agent share it). */
export interface Shutdown {
  /** Aborts at the first SIGTERM or SIGINT: the command stops its work and returns. */
  readonly signal: AbortSignal;
  /** Awaits one step of the way down, by name: a shutdown that overruns says which are pending. */
  step<T>(name: string, work: Promise<T>): Promise<T>;
}

export interface ShutdownOptions {
  readonly boundMs?: number;
  /** Where the overrun is said; stderr. */
  readonly say?: (line: string) => void;
  /** Ends the process; process.exit. */
  readonly exit?: (code: number) => void;
  /** Where the signals come from; the process. */
  readonly from?: NodeJS.EventEmitter;
}

/**
 * Stops `command` on the first SIGTERM or SIGINT: `signal` aborts, and the command's steps
 * (each awaited through `step`) take it down; the process then ends as its event loop empties.
 * A second signal ends it at once (exit 1). A shutdown
 * that has not ended the process within the bound says which steps are still pending (or, none
 * being, what keeps the process alive) and exits with status 1, leaving the site as a killed
 * process does: the journal makes the next command finish or undo a half-done apply, and the
 * lock and residency files of a dead holder are taken over.
 */
export function shutdownOnSignals(command: string, options: ShutdownOptions = {}): Shutdown {
  const boundMs = options.boundMs ?? SHUTDOWN_BOUND_MS;
  const say = options.say ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const from = options.from ?? process;
  const stop = new AbortController();
  const pending = new Map<number, string>();
  let next = 0;
  const overran = (signal: NodeJS.Signals) => {
    const steps = [...pending.values()];
    const why =
      steps.length > 0
        ? `still waiting for: ${steps.join("; ")}`
        : `every step done, yet kept running by: ${process.getActiveResourcesInfo().join(", ")}`;
    say(
      `netpol ${command}: ${signal}: the shutdown did not end within ${boundMs / 1000} s (${why}); exiting as a killed process would, the next netpol command finishes or undoes an apply left half done`,
    );
    exit(1);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) {
      say(`netpol ${command}: ${signal} again: exiting now, as a killed process would`);
      exit(1);
      return;
    }
    // Unref'd: it must not keep alive a process that is otherwise done.
    setTimeout(overran, boundMs, signal).unref();
    stop.abort();
  };
  // Kept, not taken once: execa's clean-up of running tools (signal-exit) kills the process
  // with the signal again when it finds no other handler, which skipped the whole shutdown.
  for (const s of SIGNALS) from.on(s, onSignal);
  return {
    signal: stop.signal,
    async step(name, work) {
      const id = next++;
      pending.set(id, name);
      try {
        return await work;
      } finally {
        pending.delete(id);
      }
    },
  };
}

const SIGNALS = ["SIGINT", "SIGTERM"] as const;
