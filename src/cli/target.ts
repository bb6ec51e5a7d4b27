import os from "node:os";
import type { Command } from "commander";
import { type Target, targetOf } from "../apply/target.js";
import { createRunner } from "../system/runner.js";
import { DEFAULT_STATE_DIR, namingOf } from "./naming.js";

export interface TargetOptions {
  readonly netns?: string;
  readonly stateDir?: string;
  /** Given by the commands that read key or token files; hints repeat it. */
  readonly keyDir?: string;
}

/** --netns and --state-dir, shared by every command that reads or changes the system. */
export function targetOptions(command: Command): Command {
  return command
    .option("--netns <name>", "run every system command inside this network namespace")
    .option(
      "--state-dir <dir>",
      "where netpol keeps its records and locks",
      process.env.NETPOL_STATE_DIR ?? DEFAULT_STATE_DIR,
    );
}

export function targetFrom(opts: TargetOptions): Target {
  return targetOf(createRunner(opts.netns), opts.stateDir ?? DEFAULT_STATE_DIR, {
    naming: namingOf(opts),
  });
}

export function whoAmI(via: string): string {
  return `${os.userInfo().username}@${os.hostname()} (${via})`;
}
