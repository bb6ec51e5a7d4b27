import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { applySite } from "../../src/apply/apply.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { createRunner } from "../../src/system/runner.js";
import { hubText } from "./hub-text.js";
import { createNetns, type Netns, uniqueSuffix } from "./netns.js";

export const randomKey = () => randomBytes(32).toString("base64");

/** A hub's peers as `wg show` reads them back: key → allowed IPs. */
export async function peersOf(ns: Netns, wg: string): Promise<Map<string, string>> {
  const { stdout } = await ns.exec(["wg", "show", wg, "allowed-ips"]);
  return new Map(
    stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t") as [string, string]),
  );
}

/** A live hub (hubText) applied in a namespace of its own, on wireguard-go. */
export interface HubLab {
  readonly ns: Netns;
  /** The key dir, which holds `hub.key`; the state dir is its `state`. */
  readonly dir: string;
  readonly wg: string;
  readonly hubKey: { readonly privateKey: string; readonly publicKey: string };
  /** The spokes' keys it was applied with. */
  readonly keys: string[];
  readonly target: Target;
  /** Stops its wireguard-go, deletes its namespace and its files. */
  close(): Promise<void>;
}

/**
 * Makes the namespace (`eth0` up, a veth), the hub's key file and `spokes` random spoke keys,
 * and applies hubText with them as site `hub`. `name` prefixes the namespace, the interface
 * and the directory.
 */
export async function startHubLab(name: string, spokes: number): Promise<HubLab> {
  const ns = await createNetns(name);
  const wg = `${name.slice(0, 4)}${uniqueSuffix()}`;
  let dir: string | undefined;
  const close = async () => {
    await stopWireguardGoByName([wg]);
    await ns.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    await ns.exec(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    await ns.exec(["ip", "link", "set", "eth0", "up"]);
    dir = await mkdtemp(path.join(os.tmpdir(), `netpol-${name}-`));
    const hubKey = generateKeyPair();
    await writeFile(path.join(dir, "hub.key"), `${hubKey.privateKey}\n`, { mode: 0o600 });
    const keys = Array.from({ length: spokes }, randomKey);
    const target = targetOf(createRunner(ns.name), path.join(dir, "state"));
    const text = hubText({ wg, hubKey: hubKey.publicKey, keys });
    await applySite(target, { ...parsePolicy(text, "hub.yaml"), keyDir: dir, site: "hub" }, "test");
    return { ns, dir, wg, hubKey, keys, target, close };
  } catch (err) {
    await close();
    throw err;
  }
}
