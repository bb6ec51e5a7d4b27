import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRunner, type Runner } from "../system/runner.js";
import type { TargetOptions } from "./target.js";

/** The script this process runs (bin/netpol.js): the CLI again, bundled or not. */
const MAIN = process.argv[1] ?? "";

/** Present where systemd is PID 1 (what sd_booted() looks at). */
const SYSTEMD_RUNS = "/run/systemd/system";

/**
 * The detached process that reverts an unconfirmed apply; it outlives this one. Used by
 * `apply --confirm` and by `serve` for `POST /apply?confirm=N`. Where systemd runs the machine,
 * the revert is armed a second time as a transient systemd timer (armSystemdRevert).
 */
export function startRevertTimer(
  opts: TargetOptions,
  id: string,
  seconds?: number,
): number | undefined {
  const args = [MAIN, "revert-unconfirmed", id, "--state-dir", opts.stateDir ?? ""];
  if (opts.netns) args.push("--netns", opts.netns);
  const child = spawn(process.execPath, args, { detached: true, stdio: "ignore" });
  child.unref();
  // Best effort: the process above is armed either way, and the apply must not wait on systemd.
  if (seconds !== undefined) armSystemdRevert(createRunner(), args, id, seconds).catch(() => {});
  return child.pid;
}

/**
 * `systemd-run` arguments for a transient timer that runs `node ARGS` (`netpol
 * revert-unconfirmed ID …`) `seconds` from now. The process it starts finds the pending
 * revert by its id: confirmed (or already reverted), it leaves; otherwise it reverts at the
 * deadline (sleeping until one restarted by the apply's end). Collected when done.
 */
export function systemdRevertArgs(args: readonly string[], id: string, seconds: number): string[] {
  return [
    `--unit=netpol-revert-${id}`,
    `--on-active=${seconds}s`,
    "--timer-property=AccuracySec=1s",
    "--collect",
    "--quiet",
    "--",
    process.execPath,
    ...args,
  ];
}

/**
 * Arms the revert as a transient systemd timer too, so it does not depend on one process of
 * netpol's (killed, out of memory): systemd starts the revert at the deadline whatever became of
 * it. Skipped where systemd is not PID 1 (a container, this lab); says whether it armed one.
 */
export async function armSystemdRevert(
  runner: Runner,
  args: readonly string[],
  id: string,
  seconds: number,
  systemdRuns = existsSync(SYSTEMD_RUNS),
): Promise<boolean> {
  if (!systemdRuns) return false;
  await runner.run("systemd-run", systemdRevertArgs(args, id, seconds), {
    step: "revert timer (systemd)",
  });
  return true;
}
