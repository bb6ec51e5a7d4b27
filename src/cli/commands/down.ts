import type { Command } from "commander";
import { takeDown } from "../../apply/down.js";
import { formatPlan, planJson } from "../../plan/format.js";
import { guardFleetSite } from "../fleet-managed.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { showingProgress } from "../progress.js";
import { guardedChange } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

export function registerDown(program: Command): void {
  targetOptions(
    outputOptions(program.command("down"))
      .description(
        "remove everything netpol made here (routes, rules, its nftables table, links, tunnels), as an apply of an empty policy",
      )
      .option(
        "--leave-fleet",
        "take this site out of its fleet: remove although a fleet agent ran it (stop the agent first)",
      ),
  ).action(async (opts: TargetOptions & OutputOptions & { leaveFleet?: boolean }) => {
    const here = targetFrom(opts);
    // A site a fleet agent runs changes through `netpol publish` (cli/fleet-managed.ts).
    const leaving = await guardFleetSite(
      here,
      { verb: "down", args: [] },
      opts.leaveFleet === true,
    );
    const { target, done } = showingProgress(here, opts);
    const result = await guardedChange("down", (stop) =>
      takeDown(target, whoAmI("down"), stop),
    ).finally(done);
    await leaving?.();
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
