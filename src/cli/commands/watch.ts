import type { Command } from "commander";
import { applySite } from "../../apply/apply.js";
import { watchLinks } from "../../apply/watch.js";
import { NetpolError } from "../../errors.js";
import { readPolicyFile } from "../policy-file.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface WatchOptions extends TargetOptions {
  site: string;
  keyDir?: string;
}

export function registerWatch(program: Command): void {
  targetOptions(
    program
      .command("watch")
      .description(
        "apply, then re-apply whenever links change (puts egress routes back when a tunnel returns)",
      )
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--key-dir <dir>", "directory holding the private key files (default: the policy's)"),
  ).action(async (file: string, opts: WatchOptions) => {
    const policy = { ...(await readPolicyFile(file, opts.keyDir)), site: opts.site };
    const target = targetFrom(opts);
    const converge = async () => {
      try {
        const r = await applySite(target, policy, whoAmI("watch"));
        if (r.changed)
          process.stdout.write(
            `${new Date().toISOString()} applied ${r.plan.changes.length} changes\n`,
          );
      } catch (err) {
        // Another apply holds the lock: it converges too, so this round can be skipped.
        if (err instanceof NetpolError && err.code === "NETPOL_E_LOCKED") return;
        process.stderr.write(
          `${new Date().toISOString()} ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    };
    const stop = new AbortController();
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
    await converge();
    process.stdout.write(`watching links${opts.netns ? ` in netns ${opts.netns}` : ""}\n`);
    await watchLinks(opts.netns, converge, stop.signal);
  });
}
