import type { Command } from "commander";
import { describeHealthEvent } from "../../health/format.js";
import { followHealth } from "../../resident/health.js";
import { inForceFeed } from "../../resident/policy-feed.js";
import { holdResidency } from "../../resident/residency.js";
import { Resident } from "../../resident/resident.js";
import { buildApp } from "../../server/app.js";
import { UapiClient } from "../../system/wireguard-uapi.js";
import { askStatus, controlSitesInForce } from "../all-sites.js";
import { type FrontDoorOptions, frontDoorFrom, frontDoorOptions } from "../front-door.js";
import { intervalMs } from "../interval.js";
import { DEFAULT_KEY_DIR } from "../policy-source.js";
import { startRevertTimer } from "../revert-timer.js";
import { shutdownOnSignals } from "../shutdown.js";
import { reloadOnHangUp } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface ServeOptions extends TargetOptions, FrontDoorOptions {
  listen: string;
  site?: string;
  keyDir: string;
  interval: string;
}

/** How long the page waits for another site's status: a dead tunnel must not stall it. */
const OTHER_SITE_TIMEOUT_MS = 3000;

export function registerServe(program: Command): void {
  targetOptions(
    frontDoorOptions(
      program
        .command("serve")
        .description(
          "the site's resident process with an HTTP endpoint and dashboard: holds the policy in force as `watch` does, and serves / (the page), /healthz, /status, /plan, /apply, /confirm, /revert, /reapply, /metrics",
        ),
      true,
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
        "--interval <seconds>",
        "also read everything again and reconcile this often; 0: only on link changes",
        "30",
      ),
  ).action(async (opts: ServeOptions) => {
    const door = await frontDoorFrom(opts.listen, opts);
    const every = intervalMs(opts.interval);
    const target = targetFrom(opts);
    // The site's one resident: refused, naming it, where watch or an agent already runs.
    const release = await holdResidency(target, "serve");
    const others = controlSitesInForce(target, opts.keyDir);
    // The site's resident process, as `watch` runs it (serve takes watch's place): it holds the
    // policy in force from the first reconcile, and every apply posted here goes through it.
    const wireguard = new UapiClient();
    let log: (level: "info" | "warn", what: object, text: string) => void = () => undefined;
    const health = followHealth(target, (e) => log("info", { health: e }, describeHealthEvent(e)));
    const resident = new Resident({
      target,
      feed: inForceFeed(target, { keyDir: opts.keyDir }),
      by: whoAmI("serve"),
      intervalMs: every,
      wireguard,
      afterReconcile: health.afterReconcile,
    });
    const app = await buildApp({
      target,
      token: door.token,
      ...(door.viewerToken !== undefined ? { viewerToken: door.viewerToken } : {}),
      keyDir: opts.keyDir,
      logger: true,
      accessLog: door.accessLog,
      revertTimer: (id, seconds) => startRevertTimer(opts, id, seconds),
      ...(opts.site ? { site: opts.site } : {}),
      otherSites: async () =>
        (await others()).map((s) => ({
          site: s.name,
          status: () => askStatus(target.runner, s, OTHER_SITE_TIMEOUT_MS),
        })),
      dashboard: { background: true },
      resident,
    });
    log = (level, what, text) => app.log[level](what, text);
    // What the resident does is logged as watch prints it; link events only at debug.
    resident.bus.on((e) => {
      if (e.event === "link") app.log.debug({ resident: e }, "link");
      else log(e.event === "error" ? "warn" : "info", { resident: e }, e.event);
    });
    const shutdown = shutdownOnSignals("serve");
    const stop = new AbortController();
    const running = resident.run(stop.signal);
    // After the requests in flight (the server's close waits for them): they go through it.
    app.addHook("onClose", async () => {
      stop.abort();
      await shutdown.step("the resident's loop (a reconcile under way ends first)", running);
      wireguard.close();
      await shutdown.step("the health monitor's probers", health.stop());
      await shutdown.step("the residency file's release", release());
    });
    shutdown.signal.addEventListener("abort", () => {
      shutdown
        .step("the HTTP server's close (requests in flight)", app.close())
        .catch((err: unknown) => {
          app.log.error({ err }, "the shutdown failed");
          process.exitCode = 1;
        });
    });
    reloadOnHangUp(() => {
      log(
        "info",
        { signal: "SIGHUP" },
        "SIGHUP: reading the policy in force again and reconciling",
      );
      resident.refresh();
    });
    // An address it cannot bind (not assigned yet, in use): the resident stops and the site is free.
    await app.listen({ host: door.host, port: door.port }).catch(async (err: unknown) => {
      await app.close();
      throw err;
    });
  });
}
