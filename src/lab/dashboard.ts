import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Lab } from "./lab.js";
import { adoptPid } from "./lab.js";
import { startInNetns } from "./processes.js";
import { ADDR } from "./topology.js";

/** Where each site's `netpol serve` listens in the lab: its own namespace, port 9470. */
export const SERVE_PORT = 9470;
/** The home's LAN address: the page is opened from a LAN host, as on a real router. */
const HOME_LAN = "192.168.1.1";
const VPS_TUNNEL = ADDR.wgVps.split("/")[0] ?? "";

export const VPS_CONTROL_URL = `http://${VPS_TUNNEL}:${SERVE_PORT}`;
export const VPS_TOKEN_FILE = "vps.token";

export interface LabDashboard {
  /** The page's address, from the home's LAN. */
  readonly url: string;
  readonly tokenFile: string;
  readonly viewerTokenFile: string;
}

async function token(file: string): Promise<void> {
  await writeFile(file, `${randomBytes(32).toString("base64")}\n`, { mode: 0o600 });
}

/** The tokens of the lab's servers, 0600 in the lab's directory; the VPS's is its `control` token. */
export async function writeServeTokens(dir: string): Promise<void> {
  for (const f of ["dashboard.token", "viewer.token", VPS_TOKEN_FILE])
    await token(path.join(dir, f));
}

/**
 * Starts `netpol serve` inside the VPS's namespace on its tunnel address, and inside the home's
 * on its LAN address, as long-lived lab processes (`netpol demo --down` stops them). Run inside
 * the namespace, each server's own requests (the home's to the VPS's, over the tunnel) leave
 * from there; the page is reached from a LAN host.
 */
export async function startServers(lab: Lab, main: string): Promise<LabDashboard> {
  const state = path.join(lab.dir, "state");
  const serve = (role: "home" | "vps", listen: string, tokens: string[]) => {
    const ns = lab.names.ns(role);
    const argv = [process.execPath, main, "serve", "--site", role, "--listen", listen];
    argv.push("--netns", ns, "--state-dir", state, "--key-dir", lab.dir, ...tokens);
    return adoptPid(lab.dir, startInNetns(ns, argv));
  };
  const file = (name: string) => path.join(lab.dir, name);
  const dashboard = {
    url: `http://${HOME_LAN}:${SERVE_PORT}/`,
    tokenFile: file("dashboard.token"),
    viewerTokenFile: file("viewer.token"),
  };
  // One after the other: each adds its PID to the lab's file.
  await serve("vps", `${VPS_TUNNEL}:${SERVE_PORT}`, ["--token-file", file(VPS_TOKEN_FILE)]);
  await serve("home", `${HOME_LAN}:${SERVE_PORT}`, [
    "--token-file",
    dashboard.tokenFile,
    "--viewer-token-file",
    dashboard.viewerTokenFile,
  ]);
  return dashboard;
}
