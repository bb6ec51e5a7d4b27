import type { Command } from "commander";
import { dryRun } from "../../apply/dry-run.js";
import { retiredNote } from "../../apply/site/plan-site.js";
import { fromFile, readPolicyFile } from "../../apply/source/file.js";
import { describeInterrupted } from "../../apply/state/journal.js";
import { formatPlanJson, planJson } from "../../plan/format.js";
import { otherSites, planRemote } from "../all-sites.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface PlanOptions extends TargetOptions, OutputOptions {
  site: string;
  all?: boolean;
  keyDir?: string;
  replaceSite?: boolean;
}

export function registerPlan(program: Command): void {
  targetOptions(
    outputOptions(program.command("plan"))
      .description("show what apply would change; exit 0 in sync, 2 changes pending, 1 error")
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--all", "also ask the other sites that declare `control` (their dry run)")
      .option(
        "--key-dir <dir>",
        "directory holding the private key and token files (default: the policy's)",
      )
      .option(
        "--replace-site",
        "plan --site here although the record says this namespace runs another site (a rename)",
      ),
  ).action(async (file: string, opts: PlanOptions) => {
    const target = targetFrom(opts);
    // --all reads the other sites from the policy, so it is read in full (see apply).
    const full = opts.all ? await readPolicyFile(file, opts.keyDir) : undefined;
    const remote = full
      ? await planRemote(
          target.runner,
          otherSites(full.intent, opts.site, full.keyDir).remote,
          full.text,
        )
      : [];
    // Read when the plan asks: it reads the live state while the policy is validated.
    const policy = full ? { ...full, site: opts.site } : () => fromFile(target.files, file, opts);
    const planned = await dryRun(target, policy, opts.replaceSite === true);
    const { interrupted } = planned;
    // An interrupted apply leaves its record to finish even when the kernel already agrees.
    const notes = [
      ...(interrupted ? [describeInterrupted(interrupted)] : []),
      ...planned.retired.map(retiredNote),
    ];
    const note = notes.map((n) => `note: ${n}\n`).join("");
    const local = {
      ...planJson(planned.plan),
      ...(interrupted ? { inSync: false, interruptedApply: interrupted } : {}),
      ...(planned.retired.length > 0 ? { retiredNetworks: planned.retired } : {}),
    };
    const plans = [...remote, local];
    if (opts.all)
      report(
        opts,
        () =>
          note +
          plans.map((p) => formatPlanJson(p, p === local ? target.files.scope : "remote")).join(""),
        () => ({ sites: plans }),
      );
    else
      report(
        opts,
        () => note + formatPlanJson(local, target.files.scope),
        () => local,
      );
    process.exitCode = plans.some((p) => p.conflicts.length > 0)
      ? 1
      : plans.every((p) => p.inSync)
        ? 0
        : 2;
  });
}
