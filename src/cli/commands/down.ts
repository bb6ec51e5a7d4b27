import type { Command } from "commander";
import { takeDown } from "../../apply/down.js";
import { formatPlan, planJson } from "../../plan/format.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { showingProgress } from "../progress.js";
import { guardedChange } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

export function registerDown(program: Command): void {
  targetOptions(
    outputOptions(program.command("down")).description(
      "remove everything netpol made here (routes, rules, its nftables table, links, tunnels), as an apply of an empty policy",
    ),
  ).action(async (opts: TargetOptions & OutputOptions) => {
    const { target, done } = showingProgress(targetFrom(opts), opts);
    const result = await guardedChange("down", (stop) =>
      takeDown(target, whoAmI("down"), stop),
    ).finally(done);
    report(
      opts,
      () =>
        result
          ? `${formatPlan(result.plan, target.files.scope)}${result.notes.map((n) => `note: ${n}\n`).join("")}netpol's state removed from ${target.files.scope}\n`
          : `nothing of netpol's on ${target.files.scope}: nothing to remove\n`,
      () => ({
        removed: result !== undefined,
        plan: result ? planJson(result.plan) : null,
        ...(result && result.notes.length > 0 ? { notes: result.notes } : {}),
      }),
    );
  });
}
