import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { buildApp } from "../../server/app.js";
import { readTokenFile } from "../../server/token.js";
import { startRevertTimer } from "../revert-timer.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface ServeOptions extends TargetOptions {
  listen: string;
  tokenFile: string;
  site?: string;
  keyDir: string;
  accessLog?: boolean;
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

export function registerServe(program: Command): void {
  targetOptions(
    program
      .command("serve")
      .description(
        "HTTP endpoint: /healthz, /status, /plan, /apply, /metrics (token required but for /healthz)",
      )
      .requiredOption("--token-file <file>", "file holding the bearer token (mode 0600)")
      .option(
        "--listen <addr:port>",
        "where to listen; bind to the tunnel address to reach it from the other site",
        "127.0.0.1:9470",
      )
      .option("--site <name>", "site applied when a request does not name one")
      .option("--key-dir <dir>", "directory holding the private key files", "/etc/netpol/keys")
      .option(
        "--access-log",
        "log every request, /healthz, /status and /metrics too (by default those log only failures: scrapers poll them)",
      ),
  ).action(async (opts: ServeOptions) => {
    const { host, port } = parseListen(opts.listen);
    const token = await readTokenFile(opts.tokenFile);
    const app = await buildApp({
      target: targetFrom(opts),
      token,
      keyDir: opts.keyDir,
      logger: true,
      accessLog: opts.accessLog === true,
      revertTimer: (id) => startRevertTimer(opts, id),
      ...(opts.site ? { site: opts.site } : {}),
    });
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void app.close());
    await app.listen({ host, port });
  });
}
