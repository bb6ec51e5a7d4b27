import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { planSite } from "../../src/apply/site/plan-site.js";
import { targetOf } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import type { Stamped } from "../../src/resident/events.js";
import { inForceFeed } from "../../src/resident/policy-feed.js";
import { Resident } from "../../src/resident/resident.js";
import { describeLive } from "../support/layers.js";
import { ipJson, newNode, type TestNode } from "../support/node.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

/** Waits for the first event `pick` accepts from `from` on (an index into `events`). */
async function next(events: Stamped[], from: number, pick: (e: Stamped) => boolean) {
  for (let i = 0; i < 2000; i++) {
    const found = events.slice(from).find(pick);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no such event after ${from}: ${JSON.stringify(events.slice(from))}`);
}

for (const kind of ["fake", "live"] as const) {
  (kind === "live" ? describeLive : describe)(
    `the resident process, on a ${kind} namespace`,
    () => {
      let node: TestNode;
      let stateDir: string;
      let resident: Resident;
      let stop: AbortController;
      let running: Promise<void>;
      const events: Stamped[] = [];

      beforeAll(async () => {
        node = await newNode(kind, "npres");
        await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
        await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
        for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
        stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-resident-"));
      });
      afterEach(async () => {
        stop?.abort();
        await running;
      });
      afterAll(async () => {
        await node?.destroy();
        if (stateDir) await rm(stateDir, { recursive: true, force: true });
      });

      const policy = {
        ...parsePolicy(VLAN_EGRESS_POLICY, "policy.yaml"),
        keyDir: "",
        site: "home",
      };

      async function start() {
        const target = targetOf(node.runner(), stateDir);
        resident = new Resident({
          target,
          feed: inForceFeed(target, policy),
          by: "test",
          intervalMs: 0,
        });
        events.length = 0;
        resident.bus.on((e) => events.push(e));
        stop = new AbortController();
        running = resident.run(stop.signal, policy);
        await next(events, 0, (e) => e.event === "watching");
        return target;
      }

      const egressRoute = async () =>
        (await ipJson(node, ["route", "show", "table", "3"])).some(
          (r) => r.dst === "default" && r.dev === "ext0",
        );

      it("puts the egress route back when its device returns, by a reaction of at most one process that a reconcile confirms", async () => {
        const target = await start();
        expect(await egressRoute()).toBe(true);
        for (let round = 0; round < 3; round++) {
          await next(events, 0, () => true);
          // Settled: the rounds the start-up's own events caused are over.
          await new Promise((r) => setTimeout(r, 300));
          const from = events.length;
          const spawned = target.runner.spawned;
          await node.run("ip", ["link", "set", "ext0", "down"]);
          expect(await egressRoute()).toBe(false);
          await node.run("ip", ["link", "set", "ext0", "up"]);
          const reaction = await next(events, from, (e) => e.event === "reaction");
          expect(reaction).toMatchObject({ trigger: "device ext0 up", changes: 1 });
          expect(await egressRoute(), `round ${round}`).toBe(true);
          await next(events, from, (e) => e.event === "confirmed");
          expect(target.runner.spawned - spawned, `round ${round}`).toBeLessThanOrEqual(1);
          expect(events.slice(from).filter((e) => e.event === "error")).toEqual([]);
        }
        const { plan } = await planSite(target, policy);
        expect(plan.changes).toEqual([]);
      });

      it("puts the route back through a device deleted and created again under its name, as OpenVPN's tun is", async () => {
        const target = await start();
        for (let round = 0; round < 2; round++) {
          await new Promise((r) => setTimeout(r, 300));
          const from = events.length;
          await node.run("ip", ["tuntap", "del", "ext0", "mode", "tun"]);
          await new Promise((r) => setTimeout(r, 200));
          const spawned = target.runner.spawned;
          await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
          await node.run("ip", ["link", "set", "ext0", "up"]);
          const reaction = await next(events, from, (e) => e.event === "reaction");
          expect(reaction).toMatchObject({ trigger: "device ext0 up", changes: 1 });
          expect(await egressRoute(), `round ${round}`).toBe(true);
          await next(events, from, (e) => e.event === "confirmed");
          expect(target.runner.spawned - spawned, `round ${round}`).toBeLessThanOrEqual(1);
          expect(events.slice(from).filter((e) => e.event === "error")).toEqual([]);
        }
      });
    },
  );
}
