import { afterAll, beforeAll, expect, it } from "vitest";
import type { Target } from "../../src/apply/target.js";
import { NetpolError } from "../../src/errors.js";
import { UapiClient, type WireguardControl } from "../../src/system/wireguard-uapi.js";
import { type HubLab, peersOf, randomKey, startHubLab } from "../support/hub-lab.js";
import { hubText } from "../support/hub-text.js";
import { describeLive } from "../support/layers.js";
import type { Netns } from "../support/netns.js";
import { runningResident } from "../support/resident.js";

const SPOKES = 5;

describeLive("a peer change through the resident that fails after its set, on wireguard-go", () => {
  let ns: Netns;
  let dir: string;
  let wg: string;
  let hubKey: HubLab["hubKey"];
  let keys: string[];
  let target: Target;
  const text = () => hubText({ wg, hubKey: hubKey.publicKey, keys });

  let lab: HubLab | undefined;

  beforeAll(async () => {
    lab = await startHubLab("nprbk", SPOKES);
    ({ ns, dir, wg, hubKey, keys, target } = lab);
  });
  afterAll(async () => {
    await lab?.close();
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
