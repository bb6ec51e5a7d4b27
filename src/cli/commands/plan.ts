import type { Command } from "commander";
import { planSite } from "../../apply/apply.js";
import { describeInterrupted } from "../../apply/journal.js";
import { formatPlan, planIsEmpty, planJson } from "../../plan/format.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { readPolicyFile } from "../policy-file.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface PlanOptions extends TargetOptions, OutputOptions {
  site: string;
}

export function registerPlan(program: Command): void {
  targetOptions(
    outputOptions(program.command("plan"))
      .description("show what apply would change; exit 0 in sync, 2 changes pending, 1 error")
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is"),
  ).action(async (file: string, opts: PlanOptions) => {
    const policy = await readPolicyFile(file);
    const target = targetFrom(opts);
    const { plan, interrupted } = await planSite(target, { ...policy, site: opts.site });
    // An interrupted apply leaves its record to finish even when the kernel already agrees.
    const note = interrupted ? `note: ${describeInterrupted(interrupted)}\n` : "";
    report(
      opts,
      () => note + formatPlan(plan, target.scope),
      () => ({ ...planJson(plan), ...(interrupted ? { interruptedApply: interrupted } : {}) }),
    );
    process.exitCode = plan.conflicts.length > 0 ? 1 : planIsEmpty(plan) && !interrupted ? 0 : 2;
  });
}
