import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applySite } from "../../../src/apply/apply.js";
import { takeDown } from "../../../src/apply/down.js";
import { planSite } from "../../../src/apply/site/plan-site.js";
import { loadRecord } from "../../../src/apply/state/record.js";
import { type Target, targetOf } from "../../../src/apply/target.js";
import { describeLive } from "../../support/layers.js";
import { newNode, type TestNode } from "../../support/node.js";
import { homeInput, WITH_GUEST, WITHOUT_GUEST } from "../../support/retired.js";

/** The guard: the guest's port and prefix in the set the rule drops from, counted. */
const GUARD =
  /set retired4 \{[^}]*"guest0" \. 10\.66\.0\.0\/24[^}]*\}[\s\S]*iifname \. ip saddr @retired4 counter packets \d+ bytes \d+ drop comment "retired networks"/;

/**
 * Issue 18, item 7, as kernel state: a fail-closed network that leaves the policy keeps a
 * guard on its port while the port is there, and the record keeps it; the plan is in sync with
 * it and says why. The leak itself is measured in test/e2e/retired-network.test.ts.
 */
for (const kind of ["fake", "live"] as const) {
  (kind === "live" ? describeLive : describe)(
    `a retired network's guard, on a ${kind} kernel`,
    () => {
      let node: TestNode;
      let dir: string;
      let target: Target;
      const input = (text: string) => homeInput(text, dir);
      /** netpol's table; none (a policy without nft rules): "". */
      const table = async () => node.run("nft", ["list", "ruleset"]);

      beforeAll(async () => {
        node = await newNode(kind, "npret");
        for (const d of ["wan0", "lan0", "guest0"])
          await node.run("ip", ["link", "add", d, "type", "veth", "peer", "name", `${d}p`]);
        await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
        for (const d of ["wan0", "wan0p", "lan0", "lan0p", "guest0", "guest0p", "ext0"])
          await node.run("ip", ["link", "set", d, "up"]);
        dir = await mkdtemp(path.join(os.tmpdir(), "netpol-retired-"));
        target = targetOf(node.runner(), path.join(dir, "state"));
      });
      afterAll(async () => {
        if (target) await takeDown(target, "test");
        await node?.destroy();
        if (dir) await rm(dir, { recursive: true, force: true });
      });
      beforeEach(async () => {
        await takeDown(target, "test");
        await applySite(target, input(WITH_GUEST), "test");
      });

      it("keeps a counted drop for the guest's prefix on its port once the network left, and stays in sync", async () => {
        expect(await table()).not.toMatch(GUARD);
        const removed = await applySite(target, input(WITHOUT_GUEST), "test");
        expect(removed.notes.join("\n")).toContain(
          "network guest (10.66.0.0/24) left the policy, but guest0 is still here",
        );
        expect(await table()).toMatch(GUARD);
        expect((await loadRecord(target.files))?.guarded).toEqual([
          { name: "guest", cidr: "10.66.0.0/24", device: "guest0", failClosed: true },
        ]);
        const planned = await planSite(target, input(WITHOUT_GUEST));
        expect(planned.plan.changes).toEqual([]);
        expect(planned.retired.map((n) => n.name)).toEqual(["guest"]);
        // Applied again, it stays: the record still holds it.
        expect((await applySite(target, input(WITHOUT_GUEST), "test")).changed).toBe(false);
        expect(await table()).toMatch(GUARD);
      });

      it("keeps no guard for a port the same apply removes (a bridge netpol made), and stays in sync", async () => {
        const bridged = WITH_GUEST.replace(/guest0/g, "gbr0").replace(
          "{ name: gbr0, kind: physical }",
          "{ name: gbr0, kind: bridge }",
        );
        await applySite(target, input(bridged), "test");
        const removed = await applySite(target, input(WITHOUT_GUEST), "test");
        expect(removed.notes.join("\n")).not.toContain("left the policy");
        expect(await table()).not.toContain("retired");
        expect((await planSite(target, input(WITHOUT_GUEST))).plan.changes).toEqual([]);
      });

      it("lets the guard go when the network is back, when its port is gone, and on down", async () => {
        await applySite(target, input(WITHOUT_GUEST), "test");
        await applySite(target, input(WITH_GUEST), "test");
        expect(await table()).not.toMatch(GUARD);
        await applySite(target, input(WITHOUT_GUEST), "test");
        expect(await table()).toMatch(GUARD);
        await node.run("ip", ["link", "del", "guest0"]);
        try {
          await applySite(target, input(WITHOUT_GUEST), "test");
          expect(await table()).not.toMatch(GUARD);
          expect((await loadRecord(target.files))?.guarded).toBeUndefined();
        } finally {
          await node.run("ip", [
            "link",
            "add",
            "guest0",
            "type",
            "veth",
            "peer",
            "name",
            "guest0p",
          ]);
          for (const d of ["guest0", "guest0p"]) await node.run("ip", ["link", "set", d, "up"]);
        }
        await applySite(target, input(WITH_GUEST), "test");
        await applySite(target, input(WITHOUT_GUEST), "test");
        expect(await table()).toMatch(GUARD);
        await takeDown(target, "test");
        expect(await table()).not.toContain("table inet netpol");
      });
    },
  );
}
