import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { readCaddy } from "../system/caddy/admin.js";
import { createRunner } from "../system/runner.js";
import { kill, startInNetns } from "./processes.js";

/** The VPS's own site, which Caddy serves before netpol arrives and must keep serving. */
export const OWN_SITE = { host: "own.example.org", body: "the VPS's own site" } as const;
export const CADDY_ADMIN = "localhost:2019";

/** A user's Caddy config as found on a real VPS: a site of its own on :80. */
export function ownSiteConfig(): unknown {
  return {
    admin: { listen: CADDY_ADMIN },
    apps: {
      http: {
        servers: {
          mine: {
            listen: [":80"],
            routes: [
              {
                match: [{ host: [OWN_SITE.host] }],
                handle: [{ handler: "static_response", body: `${OWN_SITE.body}\n` }],
                terminal: true,
              },
            ],
          },
        },
      },
    },
  };
}

/**
 * Starts Caddy in the namespace with the user's own config only, as a freshly started Caddy
 * without `--resume` would be, and waits for its admin API. Its state (autosave, certificates)
 * stays in `dir`. Returns its PID: the caller stops it.
 */
export async function startCaddy(ns: string, dir: string): Promise<number> {
  const home = path.join(dir, "caddy");
  await mkdir(home, { recursive: true, mode: 0o700 });
  const file = path.join(home, "own.json");
  await writeFile(file, JSON.stringify(ownSiteConfig()), { mode: 0o600 });
  const pid = startInNetns(ns, ["caddy", "run", "--config", file], {
    XDG_CONFIG_HOME: home,
    XDG_DATA_HOME: home,
  });
  const runner = createRunner(ns);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await readCaddy(runner, CADDY_ADMIN)).reachable) return pid;
    await sleep(100);
  }
  kill(pid);
  throw new Error(`caddy did not answer on ${CADDY_ADMIN} in ${ns} within 10 s`);
}
