import type { Command } from "commander";
import { watchLinks } from "../../apply/watch.js";
import { NetpolError } from "../../errors.js";
import { buildApp } from "../../server/app.js";
import { readTokenFile } from "../../server/token.js";
import { askStatus, controlSitesInForce } from "../all-sites.js";
import { DEFAULT_KEY_DIR } from "../policy-source.js";
import { startRevertTimer } from "../revert-timer.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

interface ServeOptions extends TargetOptions {
  listen: string;
  tokenFile: string;
  viewerTokenFile?: string;
  site?: string;
  keyDir: string;
  accessLog?: boolean;
}

/** How long the page waits for another site's status: a dead tunnel must not stall it. */
const OTHER_SITE_TIMEOUT_MS = 3000;

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
        "HTTP endpoint and dashboard: / (the page), /healthz, /status, /plan, /apply, /confirm, /revert, /reapply, /metrics",
      )
      .requiredOption("--token-file <file>", "file holding the bearer token (mode 0600)")
      .option(
        "--viewer-token-file <file>",
        "file holding a read-only token (mode 0600): the page and every GET, no change",
      )
      .option(
        "--listen <addr:port>",
        "where to listen; bind to the tunnel address to reach it from the other site",
        "127.0.0.1:9470",
      )
      .option("--site <name>", "site applied when a request does not name one")
      .option(
        "--key-dir <dir>",
        "directory the key file names of posted policies are relative to",
        DEFAULT_KEY_DIR,
      )
      .option(
        "--access-log",
        "log every request, /healthz, /status and /metrics too (by default those log only failures: scrapers poll them)",
      ),
  ).action(async (opts: ServeOptions) => {
    const { host, port } = parseListen(opts.listen);
    const token = await readTokenFile(opts.tokenFile);
    const viewerToken = opts.viewerTokenFile
      ? await readTokenFile(opts.viewerTokenFile)
      : undefined;
    if (viewerToken === token)
      throw new NetpolError(
        "NETPOL_E_USAGE",
        `the viewer token in ${opts.viewerTokenFile} is the full token: make another one`,
      );
    const target = targetFrom(opts);
    const others = controlSitesInForce(target, opts.keyDir);
    const app = await buildApp({
      target,
      token,
      ...(viewerToken !== undefined ? { viewerToken } : {}),
      keyDir: opts.keyDir,
      logger: true,
      accessLog: opts.accessLog === true,
      revertTimer: (id) => startRevertTimer(opts, id),
      ...(opts.site ? { site: opts.site } : {}),
      otherSites: async () =>
        (await others()).map((s) => ({
          site: s.name,
          status: () => askStatus(target.runner, s, OTHER_SITE_TIMEOUT_MS),
        })),
      // A monitor that fails (the namespace went) leaves the page to its periodic reads.
      linkChanges: (onChange, signal) =>
        void watchLinks(
          target.runner,
          async () => {
            onChange();
            return "done";
          },
          signal,
        ).catch((err: unknown) =>
          process.stderr.write(`netpol: link monitor stopped: ${(err as Error).message}\n`),
        ),
      dashboard: { background: true },
    });
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void app.close());
    await app.listen({ host, port });
  });
}
