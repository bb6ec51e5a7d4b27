import type { Command } from "commander";
import { readPolicyFile } from "../../apply/source/file.js";
import { formatPlanJson, type PlanJson } from "../../plan/format.js";
import { callSite } from "../../system/control.js";
import { createRunner } from "../../system/runner.js";
import { type OutputOptions, outputOptions, report } from "../output.js";

interface PushOptions extends OutputOptions {
  netns?: string;
  site: string;
  remote: string;
  tokenFile: string;
  dryRun?: boolean;
  replaceSite?: boolean;
}

/** The remote's plan as `netpol plan` prints one, then what became of it there. */
function formatRemotePlan(plan: PlanJson, where: string, outcome: string): string {
  return `${formatPlanJson(plan, where)}${plan.inSync ? "" : `  ${outcome}\n`}`;
}

export function registerPush(program: Command): void {
  outputOptions(
    program
      .command("push")
      .description(
        "apply a policy on another site through its `netpol serve` (over the tunnel): checked here, applied there",
      )
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "the site the remote machine is")
      .requiredOption("--remote <url>", "its `netpol serve`, e.g. http://10.99.0.1:9470")
      .requiredOption("--token-file <file>", "its bearer token (mode 0600)")
      .option("--dry-run", "only show the remote's plan")
      .option(
        "--replace-site",
        "the remote becomes --site although its record says it runs another site (a rename)",
      )
      .option(
        "--netns <name>",
        "send the request from this network namespace (where the tunnel is)",
      ),
  ).action(async (file: string, opts: PushOptions) => {
    // Checked here first: a broken policy is reported with its lines, and nothing is sent.
    const policy = await readPolicyFile(file);
    const query = new URLSearchParams({
      site: opts.site,
      ...(opts.dryRun ? { dryRun: "1" } : {}),
      ...(opts.replaceSite ? { replaceSite: "1" } : {}),
    });
    const answer = await callSite<{ plan: PlanJson; changed?: boolean }>(
      createRunner(opts.netns),
      opts.site,
      { url: opts.remote, tokenFile: opts.tokenFile },
      `/apply?${query}`,
      policy.text,
    );
    const outcome = opts.dryRun ? "not applied (--dry-run)" : "applied and verified there";
    report(
      opts,
      () => formatRemotePlan(answer.plan, opts.remote, outcome),
      () => answer,
    );
    if (opts.dryRun && !answer.plan.inSync) process.exitCode = 2;
  });
}
