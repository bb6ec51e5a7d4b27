import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { applySite, type PolicyInput } from "../../apply/apply.js";
import { loadInForce } from "../../apply/record.js";
import { filesOf } from "../../apply/state-file.js";
import { type Round, watchLinks } from "../../apply/watch.js";
import { NetpolError } from "../../errors.js";
import { readPolicyFile } from "../policy-file.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface WatchOptions extends TargetOptions {
  site: string;
  keyDir?: string;
}

const BUSY = new Set(["NETPOL_E_LOCKED", "NETPOL_E_CONFIRM_PENDING"]);

export function registerWatch(program: Command): void {
  targetOptions(
    program
      .command("watch")
      .description(
        "apply, then re-apply the policy in force whenever links change (puts egress routes back when a tunnel returns)",
      )
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--key-dir <dir>", "directory holding the private key files (default: the policy's)"),
  ).action(async (file: string, opts: WatchOptions) => {
    const started = { ...(await readPolicyFile(file, opts.keyDir)), site: opts.site };
    const target = targetFrom(opts);
    const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
    // After the first round, the policy is whatever the last apply put in force: an operator's
    // `netpol apply` of another policy is followed, not undone.
    const inForce = async (): Promise<PolicyInput> => {
      const found = await loadInForce(filesOf(target));
      return found ? { ...found.policy, keyDir: started.keyDir, site: found.record.site } : started;
    };
    const converge = async (policy: () => Promise<PolicyInput>): Promise<Round> => {
      try {
        const r = await applySite(target, await policy(), whoAmI("watch"));
        for (const note of r.notes) log(`note: ${note}`);
        if (r.changed) log(`applied ${r.plan.changes.length} changes`);
        return "done";
      } catch (err) {
        if (err instanceof NetpolError && BUSY.has(err.code)) return "busy";
        process.stderr.write(
          `${new Date().toISOString()} ${err instanceof Error ? err.message : String(err)}\n`,
        );
        return "failed";
      }
    };
    const stop = new AbortController();
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
    const watching = watchLinks(opts.netns, () => converge(inForce), stop.signal);
    while ((await converge(async () => started)) === "busy") await sleep(250);
    log(`watching links${opts.netns ? ` in netns ${opts.netns}` : ""}`);
    await watching;
  });
}
