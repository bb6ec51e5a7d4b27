import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import type { Stamped } from "../../resident/events.js";
import { inForceFeed } from "../../resident/policy-feed.js";
import { Resident } from "../../resident/resident.js";
import { UapiClient } from "../../system/wireguard-uapi.js";
import { type OutputOptions, outputOptions } from "../output.js";
import { readPolicyInput } from "../policy-input.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface WatchOptions extends TargetOptions, OutputOptions {
  site: string;
  keyDir?: string;
  interval: string;
}

/** One line per event: the event as JSON with --json, a sentence otherwise (none for some). */
function describe(e: Stamped): string | undefined {
  switch (e.event) {
    case "watching":
      return `watching links${e.netns ? ` in netns ${e.netns}` : ""}`;
    case "applied":
      return `applied ${e.changes} changes`;
    case "note":
      return `note: ${e.note}`;
    case "error":
      return e.message;
    case "reaction":
      return `${e.trigger}: ${e.changes} routes back in ${e.ms} ms`;
    case "confirmed":
      return `confirmed: the site holds the policy after ${e.after} (${e.processes} processes)`;
    case "link":
      return undefined;
  }
}

export function registerWatch(program: Command): void {
  targetOptions(
    outputOptions(program.command("watch"))
      .description(
        "apply, then hold the site to the policy in force: routes through a device are put back the moment it returns, links changing and every --interval seconds reconcile (puts proxy routes back into a restarted Caddy)",
      )
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--key-dir <dir>", "directory holding the private key files (default: the policy's)")
      .option(
        "--interval <seconds>",
        "also read everything again and reconcile this often; 0: only on link changes",
        "30",
      ),
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
    const wireguard = new UapiClient();
    const resident = new Resident({
      target,
      // After the first round, the policy in force: an operator's `netpol apply` is followed.
      feed: inForceFeed(target, started),
      by: whoAmI("watch"),
      intervalMs: seconds * 1000,
      wireguard,
    });
    // A long-running command reports events, one line each (one JSON object each with --json).
    resident.bus.on((e) => {
      const problem = e.event === "error";
      if (opts.quiet && !problem && e.event !== "note") return;
      const text = opts.json ? JSON.stringify(e) : describe(e);
      if (text === undefined) return;
      (problem ? process.stderr : process.stdout).write(
        opts.json ? `${text}\n` : `${e.time} ${text}\n`,
      );
    });
    const stop = new AbortController();
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => stop.abort());
    try {
      await resident.run(stop.signal, started);
    } finally {
      wireguard.close();
    }
  });
}
