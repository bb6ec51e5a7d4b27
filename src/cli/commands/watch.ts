import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { applySite } from "../../apply/apply.js";
import type { PolicyInput } from "../../apply/source/input.js";
import { policyInput } from "../../apply/state/compiled-cache.js";
import { loadInForce, loadRecord } from "../../apply/state/record.js";
import { type Round, watchLinks } from "../../apply/watch.js";
import { NetpolError } from "../../errors.js";
import { describeHealthEvent } from "../../health/format.js";
import type { HealthEvent } from "../../health/monitor.js";
import { type Supervisor, superviseHealth } from "../../health/supervise.js";
import { createSpawner } from "../../system/spawner.js";
import { type OutputOptions, outputOptions } from "../output.js";
import { readPolicyInput } from "../policy-input.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

const BUSY = new Set(["NETPOL_E_LOCKED", "NETPOL_E_CONFIRM_PENDING"]);

interface WatchOptions extends TargetOptions, OutputOptions {
  site: string;
  keyDir?: string;
  interval: string;
}

export function registerWatch(program: Command): void {
  targetOptions(
    outputOptions(program.command("watch"))
      .description(
        "apply, then re-apply the policy in force whenever links change (puts egress routes back when a tunnel returns) and every --interval seconds (puts proxy routes back into a restarted Caddy)",
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
    const target = targetFrom(opts);
    // The file watch starts with: the state its last apply compiled, when that is this file.
    const started = await readPolicyInput(file, opts, target);
    // A long-running command reports events, one line each (one JSON object each with --json).
    const event = (stream: NodeJS.WriteStream, text: string, json: Record<string, unknown>) => {
      const time = new Date().toISOString();
      stream.write(opts.json ? `${JSON.stringify({ time, ...json })}\n` : `${time} ${text}\n`);
    };
    // After the first round, the policy is whatever the last apply put in force: an operator's
    // `netpol apply` of another policy is followed, not undone.
    // Its compiled state is cached by the apply that put it in force (apply/policy-cache), so
    // a round that finds nothing to do does not validate the policy again.
    const inForce = async (): Promise<PolicyInput> => {
      const files = target.files;
      const record = await loadRecord(files);
      if (!record) return started;
      const { policyText: text, site } = record;
      return policyInput(files, { text, file: "policy in force", site, keyDir: started.keyDir });
    };
    const converge = async (policy: () => Promise<PolicyInput> = inForce): Promise<Round> => {
      try {
        // Read under the apply's lock: an apply that lands meanwhile is followed, not undone.
        const r = await applySite(target, policy, whoAmI("watch"));
        const changes = r.plan.changes.length;
        for (const note of r.notes) event(process.stdout, `note: ${note}`, { event: "note", note });
        if (r.changed && !opts.quiet)
          event(process.stdout, `applied ${changes} changes`, { event: "applied", changes });
        return "done";
      } catch (err) {
        // Another apply holds the site: this round is tried again once it is free.
        if (err instanceof NetpolError && BUSY.has(err.code)) return "busy";
        const message = err instanceof Error ? err.message : String(err);
        const code = err instanceof NetpolError ? err.code : "NETPOL_E_INTERNAL";
        event(process.stderr, message, { event: "error", code, message });
        return "failed";
      }
    };
    // The health monitor of the policy in force: probes its chains' paths and switches them.
    // A round that puts another policy in force starts the monitor of that one.
    const onHealth = (e: HealthEvent) => event(process.stdout, describeHealthEvent(e), { ...e });
    let health: { hash: string; supervisor: Supervisor | undefined } | undefined;
    let following = Promise.resolve();
    const followHealth = () => {
      following = following.then(async () => {
        if (stop.signal.aborted) return;
        const now = await loadInForce(target.files).catch(() => undefined);
        if (!now || now.record.policyHash === health?.hash) return;
        await health?.supervisor?.stop();
        const { intent } = now.policy;
        const spawner = createSpawner(target.runner.netns);
        health = {
          hash: now.record.policyHash,
          supervisor: await superviseHealth(target, spawner, intent, now.record.site, onHealth),
        };
      });
      return following;
    };
    const converged = async (policy?: () => Promise<PolicyInput>): Promise<Round> => {
      const round = await converge(policy);
      if (round === "done") await followHealth();
      return round;
    };
    const stop = new AbortController();
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
    const watching = watchLinks(opts.netns, () => converged(), stop.signal);
    while ((await converged(async () => started)) === "busy") await sleep(250);
    if (!opts.quiet) {
      const where = opts.netns ? ` in netns ${opts.netns}` : "";
      event(process.stdout, `watching links${where}`, { event: "watching" });
    }
    // A restarted Caddy sends no link event: its lost routes are found by looking again.
    const timer = seconds > 0 ? setInterval(() => void converged(), seconds * 1000) : undefined;
    stop.signal.addEventListener("abort", () => clearInterval(timer));
    await watching;
    await following;
    await health?.supervisor?.stop();
  });
}
