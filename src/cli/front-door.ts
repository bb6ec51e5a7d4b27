import type { Command } from "commander";
import { NetpolError } from "../errors.js";
import { readTokenFile } from "../server/token.js";

/**
 * The HTTP front door of a site's resident, the same on `netpol serve` and `netpol agent
 * --listen` (one resident per site, whichever hosts it): where it listens and its tokens.
 */
export interface FrontDoorOptions {
  readonly tokenFile?: string;
  readonly viewerTokenFile?: string;
  readonly accessLog?: boolean;
}

export interface FrontDoor {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly viewerToken?: string;
  readonly accessLog: boolean;
}

/** --token-file, --viewer-token-file and --access-log (--listen: each command its own). */
export function frontDoorOptions(command: Command, tokenRequired: boolean): Command {
  const token = "file holding the bearer token (mode 0600)";
  return (
    tokenRequired
      ? command.requiredOption("--token-file <file>", token)
      : command.option("--token-file <file>", `${token}; with --listen`)
  )
    .option(
      "--viewer-token-file <file>",
      "file holding a read-only token (mode 0600): the page and every GET, no change",
    )
    .option(
      "--access-log",
      "log every request, /healthz, /status and /metrics too (by default those log only failures: scrapers poll them)",
    );
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2];
  if (!host || !(port > 0 && port < 65536)) {
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `--listen takes ADDRESS:PORT (e.g. 127.0.0.1:9470 or [::1]:9470), not ${text}`,
    );
  }
  return { host, port };
}

/** The front door at `listen` (--listen's ADDRESS:PORT), its token files read and checked. */
export async function frontDoorFrom(listen: string, opts: FrontDoorOptions): Promise<FrontDoor> {
  const { host, port } = parseListen(listen);
  if (opts.tokenFile === undefined)
    throw new NetpolError("NETPOL_E_USAGE", "--listen needs --token-file (the bearer token)");
  const token = await readTokenFile(opts.tokenFile);
  const viewerToken = opts.viewerTokenFile ? await readTokenFile(opts.viewerTokenFile) : undefined;
  if (viewerToken === token)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `the viewer token in ${opts.viewerTokenFile} is the full token: make another one`,
    );
  return {
    host,
    port,
    token,
    ...(viewerToken !== undefined ? { viewerToken } : {}),
    accessLog: opts.accessLog === true,
  };
}
