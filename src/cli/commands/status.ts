import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { readTokenFile } from "../../server/token.js";
import { collectStatus, type SiteStatus } from "../../status/collect.js";
import { formatStatus } from "../../status/format.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface StatusOptions extends TargetOptions, OutputOptions {
  remote?: string;
  tokenFile?: string;
}

async function remoteStatus(url: string, tokenFile: string | undefined): Promise<SiteStatus> {
  if (!tokenFile) throw new NetpolError("NETPOL_E_USAGE", "--remote needs --token-file");
  const token = await readTokenFile(tokenFile);
  const response = await fetch(new URL("/status", url), {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  }).catch((err: Error) => {
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `cannot reach ${url}: ${String((err.cause as Error | undefined)?.message ?? err.message)}`,
    );
  });
  const body = (await response.json()) as SiteStatus | { error: { message: string } };
  if (!response.ok || "error" in body) {
    const message = "error" in body ? body.error.message : response.statusText;
    throw new NetpolError("NETPOL_E_USAGE", `${url} answered ${response.status}: ${message}`);
  }
  return body;
}

export function registerStatus(program: Command): void {
  targetOptions(
    outputOptions(program.command("status"))
      .description("the policy in force, drift, tunnels, egress and published services")
      .option("--remote <url>", "ask another site's `netpol serve` instead")
      .option("--token-file <file>", "bearer token for --remote"),
  ).action(async (opts: StatusOptions) => {
    const status = opts.remote
      ? await remoteStatus(opts.remote, opts.tokenFile)
      : await collectStatus(targetFrom(opts), Date.now());
    report(
      opts,
      () => formatStatus(status),
      () => status,
    );
  });
}
