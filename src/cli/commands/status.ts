import type { Command } from "commander";
import { collectStatus, type SiteStatus } from "../../status/collect.js";
import { formatStatus } from "../../status/format.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { callRemote } from "../remote.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface StatusOptions extends TargetOptions, OutputOptions {
  remote?: string;
  tokenFile?: string;
}

export function registerStatus(program: Command): void {
  targetOptions(
    outputOptions(program.command("status"))
      .description("the policy in force, drift, tunnels, egress and published services")
      .option("--remote <url>", "ask another site's `netpol serve` instead")
      .option("--token-file <file>", "bearer token for --remote"),
  ).action(async (opts: StatusOptions) => {
    const status = opts.remote
      ? await callRemote<SiteStatus>(opts.remote, opts.tokenFile, "/status")
      : await collectStatus(targetFrom(opts), Date.now());
    report(
      opts,
      () => formatStatus(status),
      () => status,
    );
  });
}
