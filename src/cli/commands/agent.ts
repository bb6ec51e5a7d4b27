import path from "node:path";
import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { Agent, type AgentEvent } from "../../fleet/agent/agent.js";
import { describeHealthEvent } from "../../health/format.js";
import { EventBus } from "../../resident/events.js";
import { holdResidency } from "../../resident/residency.js";
import { UapiClient } from "../../system/wireguard-uapi.js";
import { type EtcdOptions, etcdFrom, etcdOptions } from "../etcd-options.js";
import { type FrontDoorOptions, frontDoorFrom, frontDoorOptions } from "../front-door.js";
import { type OutputOptions, outputOptions } from "../output.js";
import { shutdownOnSignals } from "../shutdown.js";
import { reloadOnHangUp } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface AgentOptions extends TargetOptions, EtcdOptions, OutputOptions, FrontDoorOptions {
  listen?: string;
  site: string;
  keyDir: string;
  reportTtl: string;
  interval: string;
}

const seconds = (text: string, flag: string, min: number) => {
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= min))
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `${flag} takes a whole number of seconds (at least ${min}), not ${text}`,
    );
  return n;
};

/** One line per event: `time text`, or one JSON object with --json. */
function describe(e: AgentEvent): string {
  switch (e.event) {
    case "connected":
      return `following etcd (${e.endpoint})`;
    case "etcd-lost":
      return `etcd out of reach (${e.reason}); the site keeps its state`;
    case "compacted":
      return `etcd compacted its history to ${e.revision}; reading the desired state again`;
    case "waiting":
      return `revision ${e.serial}: wave ${e.wave} waits for ${e.for.join(", ")}`;
    case "held":
      return `revision ${e.serial}: the rollout stopped before this site (${e.failed.join(", ") || "earlier waves"} failed); nothing applied`;
    case "applied":
      return `revision ${e.serial}: applied ${e.changes} changes`;
    case "unchanged":
      return `revision ${e.serial}: already in force here`;
    case "failed":
      return `revision ${e.serial}: FAILED: ${e.error ?? ""}`;
    case "reverted":
      return `revision ${e.serial}: put the previous policy back (${e.reason})`;
    case "drift":
      return `put ${e.changes} drifted changes back`;
    case "reaction":
      return `${e.trigger}: ${e.changes} routes back in ${e.ms} ms`;
    case "health":
      return describeHealthEvent(e.health);
    case "error":
      return e.message;
  }
}

export function registerAgent(program: Command): void {
  targetOptions(
    etcdOptions(
      frontDoorOptions(outputOptions(program.command("agent")), false)
        .description(
          "the site's resident agent for a fleet in etcd: applies each revision published for this site when its wave starts, reports under a lease, keeps the policy in force",
        )
        .requiredOption("--site <name>", "site this machine (or namespace) is")
        .requiredOption("--key-dir <dir>", "directory holding the private key files")
        .option(
          "--listen <addr:port>",
          "also serve HTTP here, as `netpol serve` does (/status, /metrics, /healthz, the page; a posted policy is refused: publish it), from this same resident; needs --token-file",
        )
        .option(
          "--report-ttl <seconds>",
          "how long the site's report outlives a silent agent",
          "30",
        )
        .option(
          "--interval <seconds>",
          "also read everything again and reconcile this often; 0: only on link changes",
          "30",
        ),
    ),
  ).action(async (opts: AgentOptions) => {
    const reportTtl = seconds(opts.reportTtl, "--report-ttl", 2);
    const interval = seconds(opts.interval, "--interval", 0);
    const door = opts.listen !== undefined ? await frontDoorFrom(opts.listen, opts) : undefined;
    const target = targetFrom(opts);
    const etcd = await etcdFrom(opts);
    // The site's one resident: refused, naming it, where watch or serve already runs.
    const release = await holdResidency(target, "agent").catch((err: unknown) => {
      etcd.close();
      throw err;
    });
    const shutdown = shutdownOnSignals("agent");
    // A front door that cannot listen stops the agent as a signal does.
    const stop = new AbortController();
    shutdown.signal.addEventListener("abort", () => stop.abort());
    // Once the agent settles (following etcd, its resident's first round, each revision
    // applied), one full collection gives back what starting and applying left (among it the
    // bundle's source as read, 2.2 MB), which V8's memory reducer takes back only after some 8 s
    // idle otherwise (bench/agent-memory.ts). bin/netpol.js makes `gc`; run otherwise, none is.
    const settled = () => globalThis.gc?.();
    const event = (e: AgentEvent) => {
      if (e.event === "applied" || e.event === "connected") settled();
      if (opts.quiet && e.event !== "failed" && e.event !== "error") return;
      const time = new Date().toISOString();
      const stream = e.event === "failed" || e.event === "error" ? process.stderr : process.stdout;
      stream.write(
        opts.json
          ? `${JSON.stringify({ time, site: opts.site, ...e })}\n`
          : `${time} ${describe(e)}\n`,
      );
    };
    const wireguard = new UapiClient();
    // The resident's events, which reach the front door (before the resident runs) too.
    const bus = new EventBus();
    bus.on((e) => {
      if (e.event === "watching") settled();
    });
    const agent = new Agent({
      site: opts.site,
      target,
      etcd,
      keyDir: path.resolve(opts.keyDir),
      appliedBy: whoAmI("agent"),
      reportTtl,
      interval,
      signal: stop.signal,
      event,
      wireguard,
      bus,
    });
    reloadOnHangUp(() => agent.reload());
    // The front door opens beside the agent's start (it may wait for its address, which the
    // resident's first round puts back at boot); one that cannot listen stops the agent.
    const front = (
      door
        ? import("../agent-front-door.js").then(({ openAgentFrontDoor }) =>
            openAgentFrontDoor(door, {
              target,
              site: opts.site,
              keyDir: path.resolve(opts.keyDir),
              etcd: etcd.endpoints,
              agent,
              bus,
              signal: stop.signal,
            }),
          )
        : Promise.resolve(undefined)
    ).catch((err: unknown) => {
      stop.abort();
      throw err;
    });
    try {
      const [ran, opened] = await Promise.allSettled([
        shutdown.step("the agent's loop (an apply under way ends first)", agent.run()),
        front,
      ]);
      if (opened.status === "fulfilled" && opened.value)
        await shutdown.step(
          "the HTTP front door's close (requests in flight)",
          opened.value.close(),
        );
      if (ran.status === "rejected") throw ran.reason;
      if (opened.status === "rejected") throw opened.reason;
    } finally {
      wireguard.close();
      etcd.close();
      await shutdown.step("the residency file's release", release());
    }
  });
}
