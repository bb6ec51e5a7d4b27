import type { StopRequest } from "../apply/interrupt.js";

/**
 * Signals for a command that changes a live box (apply, down, confirm, revert, recover).
 *
 * - SIGHUP (the operator's SSH session dropped) is ignored, as under nohup: the change goes on
 *   to its end. The tools netpol runs are in their own process group (system/runner.ts), so
 *   the hang-up sent to the terminal's job does not reach them either; and output to the
 *   terminal that is gone is dropped (cli/main.ts ignores EPIPE and EIO on stdout and stderr).
 * - SIGINT and SIGTERM are noted, not obeyed at once: the apply asks `stop` at its safe
 *   points and rolls back through its usual path (apply/interrupt.ts). A command that only
 *   restores (revert, confirm, recover) finishes first. Either way the exit is non-zero.
 * - kill -9 cannot be caught: the journal makes the next command finish or undo it, as before.
 */
const ignoreHangUp = () => undefined;

/**
 * Runs `work` (the command's change) under those rules. The handlers stay until the process
 * exits (they do not keep it alive): a stop asked once the change had no safe point left (the
 * work then succeeded, or it is printing its result) is said, and the exit is non-zero; a
 * failed change says itself what happened (rolled back, or what failed).
 */
export async function guardedChange<T>(
  what: string,
  work: (stop: StopRequest) => Promise<T>,
): Promise<T> {
  let asked: NodeJS.Signals | undefined;
  let actedOn = false;
  let finished = false;
  const tooLate = (signal: NodeJS.Signals) => {
    process.stderr.write(
      `netpol: ${signal} came when ${what} had no safe point left to stop at: it finished, nothing was undone\n`,
    );
    process.exitCode = 1;
  };
  const note = (signal: NodeJS.Signals) => {
    if (finished) tooLate(signal);
    else asked ??= signal;
  };
  if (!process.listeners("SIGHUP").includes(ignoreHangUp)) process.on("SIGHUP", ignoreHangUp);
  process.on("SIGINT", note);
  process.on("SIGTERM", note);
  const done = await work(() => {
    if (asked) actedOn = true;
    return asked;
  });
  finished = true;
  if (asked && !actedOn) tooLate(asked);
  return done;
}

/**
 * A resident process (serve, watch, agent) reloads on SIGHUP, as a daemon does (systemd's
 * `ExecReload=/bin/kill -HUP $MAINPID`): `reload` re-reads the policy it holds and reconciles;
 * it keeps running whatever the reload finds (a bad file is said, the policy held stays).
 */
export function reloadOnHangUp(reload: () => void): void {
  process.on("SIGHUP", reload);
}
