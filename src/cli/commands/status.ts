import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { collectStatus, type SiteStatus } from "../../status/collect.js";
import { formatStatus } from "../../status/format.js";
import { callSite } from "../../system/control.js";
import { askStatus, controlSitesInForce } from "../all-sites.js";
import { type EtcdOptions, etcdFrom, etcdOptions } from "../etcd-options.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { DEFAULT_KEY_DIR } from "../policy-source.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface StatusOptions extends TargetOptions, OutputOptions, EtcdOptions {
  fleet?: boolean;
  remote?: string;
  tokenFile?: string;
  all?: boolean;
  keyDir: string;
}

/** Whether a site differs from its policy in force: drift, a conflict, an unfinished apply. */
const drifting = (s: SiteStatus) =>
  (s.drift !== null && (!s.drift.inSync || s.drift.conflicts.length > 0)) ||
  s.interruptedApply !== null;

/** The sites the policy in force here reaches through `control`, asked for their status. */
async function othersStatus(opts: StatusOptions): Promise<SiteStatus[]> {
  const target = targetFrom(opts);
  const remote = await controlSitesInForce(target, opts.keyDir)();
  return Promise.all(remote.map((s) => askStatus(target.runner, s)));
}

/** Another site's status, asked from the namespace `--netns` names (the tunnel is there). */
async function remoteStatus(opts: StatusOptions, url: string): Promise<SiteStatus> {
  if (!opts.tokenFile) throw new NetpolError("NETPOL_E_USAGE", "--remote needs --token-file");
  const runner = targetFrom(opts).runner;
  return callSite<SiteStatus>(runner, "remote", { url, tokenFile: opts.tokenFile }, "/status");
}

/** `--fleet`: every site's report, from etcd in one read. */
async function fleetStatus(opts: StatusOptions): Promise<void> {
  const { fleetRows, fleetSettled, readFleet } = await import("../../fleet/view.js");
  const { formatFleet } = await import("../../fleet/format.js");
  const etcd = await etcdFrom(opts);
  try {
    const fleet = await readFleet(etcd);
    const sites = fleetRows(fleet, Date.now());
    const serial = fleet.head?.serial;
    report(
      opts,
      () => formatFleet(sites, serial),
      () => ({ revision: serial ?? null, sites }),
    );
    // As the site's own status: 2 when the fleet is not as published (--quiet tells by this).
    process.exitCode = fleetSettled(sites, serial) ? 0 : 2;
  } finally {
    etcd.close();
  }
}

export function registerStatus(program: Command): void {
  etcdOptions(
    targetOptions(
      outputOptions(program.command("status"))
        .description("the policy in force, drift, tunnels, egress and published services")
        .option("--remote <url>", "ask another site's `netpol serve` instead")
        .option("--token-file <file>", "bearer token for --remote")
        .option("--all", "also the other sites of the policy in force that declare `control`")
        .option(
          "--key-dir <dir>",
          "directory the token file names of the policy in force are relative to",
          DEFAULT_KEY_DIR,
        )
        .option("--fleet", "every site of the fleet in etcd at a glance (with --etcd)"),
    ),
  ).action(async (opts: StatusOptions) => {
    if (opts.fleet) return fleetStatus(opts);
    const status = opts.remote
      ? await remoteStatus(opts, opts.remote)
      : await collectStatus(targetFrom(opts), Date.now());
    const all = opts.all ? [...(await othersStatus(opts)), status] : [status];
    if (opts.all)
      report(
        opts,
        () => all.map(formatStatus).join(""),
        () => ({ sites: all }),
      );
    else
      report(
        opts,
        () => formatStatus(status),
        () => status,
      );
    // As `plan`: 2 when a site is not as its policy in force says (--quiet tells by this alone).
    process.exitCode = all.some(drifting) ? 2 : 0;
  });
}
