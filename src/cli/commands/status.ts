import type { Command } from "commander";
import { loadInForce } from "../../apply/state/record.js";
import { NetpolError } from "../../errors.js";
import { collectStatus, type SiteStatus } from "../../status/collect.js";
import { formatStatus } from "../../status/format.js";
import { callSite } from "../../system/control.js";
import { otherSites } from "../all-sites.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface StatusOptions extends TargetOptions, OutputOptions {
  remote?: string;
  tokenFile?: string;
  all?: boolean;
  keyDir: string;
}

/** The sites the policy in force here reaches through `control`, asked for their status. */
async function othersStatus(opts: StatusOptions, local: SiteStatus): Promise<SiteStatus[]> {
  const found = await loadInForce(targetFrom(opts).files);
  if (!found || local.site === null) return [];
  const { remote } = otherSites(found.policy.intent, local.site, opts.keyDir);
  return Promise.all(remote.map((s) => callSite<SiteStatus>(s.name, s.control, "/status")));
}

async function remoteStatus(url: string, tokenFile: string | undefined): Promise<SiteStatus> {
  if (!tokenFile) throw new NetpolError("NETPOL_E_USAGE", "--remote needs --token-file");
  return callSite<SiteStatus>("remote", { url, tokenFile }, "/status");
}

export function registerStatus(program: Command): void {
  targetOptions(
    outputOptions(program.command("status"))
      .description("the policy in force, drift, tunnels, egress and published services")
      .option("--remote <url>", "ask another site's `netpol serve` instead")
      .option("--token-file <file>", "bearer token for --remote")
      .option("--all", "also the other sites of the policy in force that declare `control`")
      .option("--key-dir <dir>", "directory holding the token files", "/etc/netpol/keys"),
  ).action(async (opts: StatusOptions) => {
    const status = opts.remote
      ? await remoteStatus(opts.remote, opts.tokenFile)
      : await collectStatus(targetFrom(opts), Date.now());
    if (opts.all) {
      const all = [...(await othersStatus(opts, status)), status];
      report(
        opts,
        () => all.map(formatStatus).join(""),
        () => ({ sites: all }),
      );
      return;
    }
    report(
      opts,
      () => formatStatus(status),
      () => status,
    );
  });
}
