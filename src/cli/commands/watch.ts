import type { Command } from "commander";
import type { Target } from "../../apply/target.js";
import { NetpolError } from "../../errors.js";
import { describeHealthEvent } from "../../health/format.js";
import type { HealthEvent } from "../../health/monitor.js";
import type { Stamped } from "../../resident/events.js";
import { followHealth } from "../../resident/health.js";
import { inForceFeed } from "../../resident/policy-feed.js";
import { holdResidency } from "../../resident/residency.js";
import { Resident } from "../../resident/resident.js";
import { UapiClient } from "../../system/wireguard-uapi.js";
import { intervalMs } from "../interval.js";
import { type OutputOptions, outputOptions } from "../output.js";
import { choosePolicy } from "../policy-source.js";
import { type Shutdown, shutdownOnSignals } from "../shutdown.js";
import { reloadOnHangUp } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface WatchOptions extends TargetOptions, OutputOptions {
  site?: string;
  inForce?: boolean;
  keyDir?: string;
  interval: string;
}

/** One line per event: the event as JSON with --json, a sentence otherwise (none for some). */
function describe(e: Stamped): string | undefined {
  switch (e.event) {
    case "watching":
      return `watching links${e.netns ? ` in netns ${e.netns}` : ""}`;
    case "applied":
      return `applied ${e.changes} changes: ${e.what.join("; ")}${e.changes > e.what.length ? `; and ${e.changes - e.what.length} more` : ""}`;
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
      .argument("[policy]", "policy file (YAML)")
      .option("--site <name>", "site this machine (or namespace) is")
      .option("--in-force", "start from the policy in force here instead of a file")
      .option(
        "--key-dir <dir>",
        "directory holding the private key files (default: the policy's; /etc/netpol with --in-force)",
      )
      .option(
        "--interval <seconds>",
        "also read everything again and reconcile this often; 0: only on link changes",
        "30",
      ),
  ).action(async (file: string | undefined, opts: WatchOptions) => {
    const every = intervalMs(opts.interval);
    const target = targetFrom(opts);
    // From the start: a SIGTERM while the first apply runs lets it finish, then stops.
    const shutdown = shutdownOnSignals("watch");
    // The site's one resident: refused, naming it, where serve or an agent already runs.
    const release = await holdResidency(target, "watch");
    try {
      await watch(file, opts, target, every, shutdown);
    } finally {
      await shutdown.step("the residency file's release", release());
    }
  });
}

async function watch(
  file: string | undefined,
  opts: WatchOptions,
  target: Target,
  every: number,
  shutdown: Shutdown,
): Promise<void> {
  // What watch starts with: the file (the state its last apply compiled, when that is this
  // file), or with --in-force the policy in force, which a reboot must not trade for a file.
  const started = await choosePolicy(file, opts, target)();
  const print = (problem: boolean, text: string, json: Record<string, unknown>) => {
    if (opts.quiet && !problem && json.event !== "note") return;
    const line = opts.json ? JSON.stringify(json) : `${json.time} ${text}`;
    (problem ? process.stderr : process.stdout).write(`${line}\n`);
  };
  // The health monitor of the policy in force: probes its chains' paths and switches them.
  const onHealth = (e: HealthEvent) =>
    print(false, describeHealthEvent(e), { time: new Date().toISOString(), ...e });
  const health = followHealth(target, onHealth);
  const wireguard = new UapiClient();
  const resident = new Resident({
    target,
    // After the first round, the policy in force: an operator's `netpol apply` is followed.
    feed: inForceFeed(target, started),
    by: whoAmI("watch"),
    intervalMs: every,
    wireguard,
    afterReconcile: health.afterReconcile,
  });
  // A long-running command reports events, one line each (one JSON object each with --json).
  resident.bus.on((e) => {
    const text = describe(e);
    if (text !== undefined || opts.json) print(e.event === "error", text ?? "", e);
  });
  // Started with a file: SIGHUP applies it again as it now reads (it becomes the policy in
  // force); with --in-force, the policy in force is read again. A bad file changes nothing.
  reloadOnHangUp(() => {
    if (file === undefined || opts.inForce) return resident.refresh();
    resident.bus.emit({ event: "note", note: `SIGHUP: applying ${file} again` });
    resident.apply(choosePolicy(file, opts, target), whoAmI("watch")).catch((err: unknown) =>
      resident.bus.emit({
        event: "error",
        code: err instanceof NetpolError ? err.code : "NETPOL_E_INTERNAL",
        message: `SIGHUP: ${file} not applied, the policy in force stays: ${err instanceof Error ? err.message : String(err)}`,
      }),
    );
  });
  try {
    await shutdown.step(
      "the resident's loop (a reconcile under way ends first)",
      resident.run(shutdown.signal, started),
    );
  } finally {
    wireguard.close();
    await shutdown.step("the health monitor's probers", health.stop());
  }
}
