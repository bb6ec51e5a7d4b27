import type { Command } from "commander";
import { applySite } from "../../apply/apply.js";
import { watchLinks } from "../../apply/watch.js";
import { NetpolError } from "../../errors.js";
import { type OutputOptions, outputOptions } from "../output.js";
import { readPolicyFile } from "../policy-file.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface WatchOptions extends TargetOptions, OutputOptions {
  site: string;
  keyDir?: string;
  interval: string;
}

export function registerWatch(program: Command): void {
  targetOptions(
    outputOptions(program.command("watch"))
      .description(
        "apply, then re-apply whenever links change (puts egress routes back when a tunnel returns) and every --interval seconds (puts proxy routes back into a restarted Caddy)",
      )
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--key-dir <dir>", "directory holding the private key files (default: the policy's)")
      .option("--interval <seconds>", "also re-apply this often; 0: only on link changes", "30"),
  ).action(async (file: string, opts: WatchOptions) => {
    const seconds = Number(opts.interval);
    if (!(Number.isInteger(seconds) && seconds >= 0))
      throw new NetpolError(
        "NETPOL_E_USAGE",
        `--interval takes a whole number of seconds, not ${opts.interval}`,
      );
    const policy = { ...(await readPolicyFile(file, opts.keyDir)), site: opts.site };
    const target = targetFrom(opts);
    // A long-running command reports events, one line each (one JSON object each with --json).
    const event = (stream: NodeJS.WriteStream, text: string, json: Record<string, unknown>) => {
      const time = new Date().toISOString();
      stream.write(opts.json ? `${JSON.stringify({ time, ...json })}\n` : `${time} ${text}\n`);
    };
    const converge = async () => {
      try {
        const r = await applySite(target, policy, whoAmI("watch"));
        const changes = r.plan.changes.length;
        if (r.changed && !opts.quiet)
          event(process.stdout, `applied ${changes} changes`, { event: "applied", changes });
      } catch (err) {
        // Another apply holds the lock: it converges too, so this round can be skipped.
        if (err instanceof NetpolError && err.code === "NETPOL_E_LOCKED") return;
        const message = err instanceof Error ? err.message : String(err);
        const code = err instanceof NetpolError ? err.code : "internal";
        event(process.stderr, message, { event: "error", code, message });
      }
    };
    const stop = new AbortController();
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
    await converge();
    if (!opts.quiet) {
      const where = opts.netns ? ` in netns ${opts.netns}` : "";
      event(process.stdout, `watching links${where}`, { event: "watching" });
    }
    // A restarted Caddy sends no link event: its lost routes are found by looking again.
    const timer = seconds > 0 ? setInterval(converge, seconds * 1000) : undefined;
    stop.signal.addEventListener("abort", () => clearInterval(timer));
    await watchLinks(opts.netns, converge, stop.signal);
  });
}
