import { spawn } from "node:child_process";
import type { TargetOptions } from "./target.js";

/** The script this process runs (bin/netpol.js): the CLI again, bundled or not. */
const MAIN = process.argv[1] ?? "";

/**
 * The detached process that reverts an unconfirmed apply; it outlives this one. Used by
 * `apply --confirm` and by `serve` for `POST /apply?confirm=N`.
 */
export function startRevertTimer(opts: TargetOptions, id: string): number | undefined {
  const args = [MAIN, "revert-unconfirmed", id, "--state-dir", opts.stateDir ?? ""];
  if (opts.netns) args.push("--netns", opts.netns);
  const child = spawn(process.execPath, args, { detached: true, stdio: "ignore" });
  child.unref();
  return child.pid;
}
