import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { targetOf } from "../../src/apply/target.js";
import type { Stamped } from "../../src/resident/events.js";
import { inForceFeed } from "../../src/resident/policy-feed.js";
import { Resident } from "../../src/resident/resident.js";
import { buildApp } from "../../src/server/app.js";
import type { Runner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import { ipJson, newNode, type TestNode } from "../support/node.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

const TOKEN = "t0ken-for-resident-tests-0123";
const auth = { authorization: `Bearer ${TOKEN}` };

/** The runner `inner`, writing down the tool of every process it starts. */
function counting(inner: Runner): Runner & { readonly tools: string[] } {
  const tools: string[] = [];
  return {
    tools,
    netns: inner.netns,
    get spawned() {
      return inner.spawned;
    },
    run: (tool, args, options) => {
      tools.push(tool);
      return inner.run(tool, args, options);
    },
    start: (tool, args, options) => {
      tools.push(tool);
      return inner.start(tool, args, options);
    },
    session: (tool, args, options) => {
      tools.push(tool);
      return inner.session(tool, args, options);
    },
  };
}

async function next(events: Stamped[], from: number, pick: (e: Stamped) => boolean) {
  for (let i = 0; i < 2000; i++) {
    const found = events.slice(from).find(pick);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no such event after ${from}: ${JSON.stringify(events.slice(from))}`);
}

// `netpol serve` hosts the site's resident: the same tests on a fake kernel and a real namespace.
for (const kind of ["fake", "live"] as const) {
  (kind === "live" ? describeLive : describe)(
    `the HTTP app in front of the resident, on a ${kind} namespace`,
    () => {
      let node: TestNode;
      let stateDir: string;
      let app: FastifyInstance;
      let runner: ReturnType<typeof counting>;
      let resident: Resident;
      const stop = new AbortController();
      let running: Promise<void>;
      const events: Stamped[] = [];

      beforeAll(async () => {
        node = await newNode(kind, "npsres");
        await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
        await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
        for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
        stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-srvres-"));
        runner = counting(node.runner());
        const target = targetOf(runner, stateDir);
        // As serve starts it: nothing applied here yet, so it holds nothing until a POST.
        resident = new Resident({
          target,
          feed: inForceFeed(target, { keyDir: stateDir }),
          by: "serve",
          intervalMs: 0,
        });
        resident.bus.on((e) => events.push(e));
        running = resident.run(stop.signal);
        await next(events, 0, (e) => e.event === "watching");
        app = await buildApp({
          target,
          token: TOKEN,
          keyDir: stateDir,
          site: "home",
          statusMaxAgeMs: 0,
          resident,
        });
      });
      afterAll(async () => {
        await app?.close();
        stop.abort();
        await running;
        await node?.destroy();
        if (stateDir) await rm(stateDir, { recursive: true, force: true });
      });

      const egressRoute = async () =>
        (await ipJson(node, ["route", "show", "table", "3"])).some(
          (r) => r.dst === "default" && r.dev === "ext0",
        );

      it("idles without a policy, then applies a posted one through the resident", async () => {
        expect(events.filter((e) => e.event === "error")).toEqual([]);
        expect(events.filter((e) => e.event === "applied")).toEqual([]);
        const r = await app.inject({
          method: "POST",
          url: "/apply",
          headers: { ...auth, "content-type": "application/yaml" },
          payload: VLAN_EGRESS_POLICY,
        });
        expect(r.statusCode, r.body).toBe(200);
        expect(r.json()).toMatchObject({ changed: true });
        // The resident's own record of it: the apply went through it, not beside it.
        expect(events.find((e) => e.event === "applied")).toMatchObject({ by: "http 127.0.0.1" });
        expect(await egressRoute()).toBe(true);
      });

      it("reads /status from the live model: no ip, wg or sysctl process, one nft for its counters", async () => {
        // The first read after the apply may fill the model; the next is a model read.
        expect((await app.inject({ url: "/status", headers: auth })).statusCode).toBe(200);
        const from = runner.tools.length;
        const r = await app.inject({ url: "/status", headers: auth });
        expect(r.statusCode).toBe(200);
        expect(r.json()).toMatchObject({
          site: "home",
          drift: { inSync: true },
          egress: [{ name: "out", deviceUp: true, failClosedEngaged: false }],
        });
        const spawned = runner.tools.slice(from);
        // One nft: the counters; other tables' forward chains come from the resident's last read.
        expect(spawned).toEqual(["nft"]);
      });

      it("holds the posted policy: a device that returns gets its route back from the resident", async () => {
        const from = events.length;
        await node.run("ip", ["link", "set", "ext0", "down"]);
        expect(await egressRoute()).toBe(false);
        await node.run("ip", ["link", "set", "ext0", "up"]);
        expect(await next(events, from, (e) => e.event === "reaction")).toMatchObject({
          trigger: "device ext0 up",
        });
        expect(await egressRoute()).toBe(true);
        const status = (await app.inject({ url: "/status", headers: auth })).json();
        expect(status.egress).toMatchObject([{ deviceUp: true, failClosedEngaged: false }]);
      });
    },
  );
}
