import type { Command } from "commander";
import { recoverState } from "../../apply/state/set-aside.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

export function registerRecover(program: Command): void {
  targetOptions(
    program
      .command("recover")
      .description("set unreadable state files (record, journal, pending, lock) aside"),
  ).action(async (opts: TargetOptions) => {
    const report = await recoverState(targetFrom(opts).files);
    if (report.length === 0) process.stdout.write("every state file is readable; nothing to do\n");
    for (const line of report) process.stdout.write(`${line}\n`);
    if (report.length > 0) process.stdout.write("now run `netpol apply` with the policy to keep\n");
  });
}
