import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { loadCached } from "../../src/apply/state/compiled-cache.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { createRunner } from "../../src/system/runner.js";
import { UapiClient } from "../../src/system/wireguard-uapi.js";
import { hubText } from "../support/hub-text.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";
import { runningResident } from "../support/resident.js";

const randomKey = () => randomBytes(32).toString("base64");

describeLive("the compiled cache of changes through the resident", () => {
  let ns: Netns;
  let dir: string;
  let wg: string;
  let hubKey: { privateKey: string; publicKey: string };
  let keys: string[];
  let target: Target;
  const text = () => hubText({ wg, hubKey: hubKey.publicKey, keys });
  /** Whether the cache holds the compiled state of `t` (vitest.config.ts gives a build id). */
  const cached = async (t: string) =>
    (await loadCached(target.files, { text: t, site: "hub", keyDir: dir })) !== undefined;

  beforeAll(async () => {
    ns = await createNetns("npcache");
    await ns.exec(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    await ns.exec(["ip", "link", "set", "eth0", "up"]);
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-cache-write-"));
    wg = `cw${uniqueSuffix()}`;
    hubKey = generateKeyPair();
    await writeFile(path.join(dir, "hub.key"), `${hubKey.privateKey}\n`, { mode: 0o600 });
    keys = Array.from({ length: 3 }, randomKey);
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

  it("is written once the changes pause, not before a change answers, and when the resident stops", async () => {
    expect(await cached(text())).toBe(true);
    const uapi = new UapiClient();
    const { resident, stop } = await runningResident(target, { keyDir: dir }, { wireguard: uapi });
    const post = () =>
      resident.applyText({ text: text(), name: "hub.yaml", site: "hub", keyDir: dir }, "test");
    try {
      keys[0] = randomKey();
      await post();
      expect(await cached(text())).toBe(false);
      // Then, with nothing else to do, the change's state is cached.
      for (let i = 0; i < 100 && !(await cached(text())); i++) await sleep(50);
      expect(await cached(text())).toBe(true);

      keys[1] = randomKey();
      await post();
      expect(await cached(text())).toBe(false);
    } finally {
      await stop();
      uapi.close();
    }
    // Stopping wrote what it held.
    expect(await cached(text())).toBe(true);
  });
});
