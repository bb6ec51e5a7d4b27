import type { Command } from "commander";
import { planSite } from "../../apply/apply.js";
import { formatPlan, planIsEmpty, planJson } from "../../plan/format.js";
import { readPolicyFile } from "../policy-file.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface PlanOptions extends TargetOptions {
  site: string;
  json?: boolean;
}

export function registerPlan(program: Command): void {
  targetOptions(
    program
      .command("plan")
      .description("show what apply would change; exit 0 in sync, 2 changes pending, 1 error")
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--json", "print the plan as JSON"),
  ).action(async (file: string, opts: PlanOptions) => {
    const policy = await readPolicyFile(file);
    const target = targetFrom(opts);
    const { plan } = await planSite(target, { ...policy, site: opts.site });
    process.stdout.write(
      opts.json ? `${JSON.stringify(planJson(plan), null, 2)}\n` : formatPlan(plan, target.scope),
    );
    process.exitCode = plan.conflicts.length > 0 ? 1 : planIsEmpty(plan) ? 0 : 2;
  });
}
