import type { Command } from "commander";
import { recoverState } from "../../apply/state/set-aside.js";
import { commandLine } from "../../next-command.js";
import { guardedChange } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

export function registerRecover(program: Command): void {
  targetOptions(
    program
      .command("recover")
      .description("set unreadable state files (record, journal, pending, lock) aside"),
  ).action(async (opts: TargetOptions) => {
    const target = targetFrom(opts);
    const report = await guardedChange("recover", () => recoverState(target));
    if (report.length === 0) process.stdout.write("every state file is readable; nothing to do\n");
    for (const line of report) process.stdout.write(`${line}\n`);
    const apply = commandLine(
      { verb: "apply", args: ["FILE", "--site", "SITE"] },
      target.files.naming,
    );
    if (report.length > 0) process.stdout.write(`now run \`${apply}\` with the policy to keep\n`);
  });
}
