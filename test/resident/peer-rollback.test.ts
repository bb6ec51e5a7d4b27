import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { NetpolError } from "../../src/errors.js";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { createRunner } from "../../src/system/runner.js";
import { UapiClient, type WireguardControl } from "../../src/system/wireguard-uapi.js";
import { hubText } from "../support/hub-text.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";
import { runningResident } from "../support/resident.js";

const SPOKES = 5;

const randomKey = () => randomBytes(32).toString("base64");

/** The hub's peers as `wg show` reads them back: key → allowed IPs. */
async function peersOf(ns: Netns, wg: string): Promise<Map<string, string>> {
  const { stdout } = await ns.exec(["wg", "show", wg, "allowed-ips"]);
  return new Map(
    stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("\t") as [string, string]),
  );
}

describeLive("a peer change through the resident that fails after its set, on wireguard-go", () => {
  let ns: Netns;
  let dir: string;
  let wg: string;
  let hubKey: { privateKey: string; publicKey: string };
  let keys: string[];
  let target: Target;
  const text = () => hubText({ wg, hubKey: hubKey.publicKey, keys });

  beforeAll(async () => {
    ns = await createNetns("nprbk");
    await ns.exec(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    await ns.exec(["ip", "link", "set", "eth0", "up"]);
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-peer-rollback-"));
    wg = `rb${uniqueSuffix()}`;
    hubKey = generateKeyPair();
    await writeFile(path.join(dir, "hub.key"), `${hubKey.privateKey}\n`, { mode: 0o600 });
    keys = Array.from({ length: SPOKES }, randomKey);
    target = targetOf(createRunner(ns.name), path.join(dir, "state"));
    await applySite(
      target,
      { ...parsePolicy(text(), "hub.yaml"), keyDir: dir, site: "hub" },
      "test",
    );
  });
  afterAll(async () => {
    await stopWireguardGoByName([wg]);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("puts every peer back from the config the model makes for the rollback", async () => {
    const uapi = new UapiClient();
    let failNext = false;
    const wireguard: WireguardControl = {
      get: (name) => uapi.get(name),
      // The set is made, then answered as failed: the change is in the kernel, the apply fails.
      set: async (name, lines) => {
        await uapi.set(name, lines);
        if (failNext) {
          failNext = false;
          throw new NetpolError("NETPOL_E_TOOL_FAILED", "the set failed (test)");
        }
      },
    };
    const { resident, stop } = await runningResident(target, { keyDir: dir }, { wireguard });
    const post = () =>
      resident.applyText({ text: text(), name: "hub.yaml", site: "hub", keyDir: dir }, "test");
    try {
      // Two changes read from the text before: the next plan's WireGuard comes from the model.
      for (const round of [1, 3]) {
        keys[round] = randomKey();
        await post();
      }
      const held = await peersOf(ns, wg);
      expect([...held.keys()].sort()).toEqual([...keys].sort());

      const kept = [...keys];
      keys[2] = randomKey();
      failNext = true;
      await expect(post()).rejects.toMatchObject({ code: "NETPOL_E_APPLY_FAILED" });
      const after = await peersOf(ns, wg);
      expect(after).toEqual(held);
      expect([...after.keys()].sort()).toEqual([...kept].sort());

      // The next change, read whole again after the failure, holds.
      keys[4] = randomKey();
      await post();
      expect([...(await peersOf(ns, wg)).keys()].sort()).toEqual([...keys].sort());
    } finally {
      await stop();
      uapi.close();
    }
  });
});
