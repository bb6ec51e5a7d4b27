import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planSite } from "../../src/apply/site/plan-site.js";
import { targetOf } from "../../src/apply/target.js";
import { NetpolError } from "../../src/errors.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { hubText } from "../support/hub-text.js";
import { describeLive } from "../support/layers.js";
import { ipJson, newNode, type TestNode } from "../support/node.js";
import { runningResident } from "../support/resident.js";

const TEXT = `version: 1
sites:
  home:
    interfaces: [{ name: lan0, kind: physical }]
    external: [{ name: ext0 }]
    networks:
      - { name: files, cidr: 192.168.6.0/24, interface: lan0, address: 192.168.6.1 }
      - { name: cams, cidr: 192.168.7.0/24, interface: lan0, address: 192.168.7.1 }
    egress:
      - { name: out, from: [files, cams], via: ext0, table: 3, priority: 200 }
`;

/** What reading a text gives: the error's code, message and places, or nothing. */
async function problems(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
    return undefined;
  } catch (err) {
    if (!(err instanceof NetpolError)) throw err;
    return { code: err.code, message: err.message, diagnostics: err.diagnostics };
  }
}

for (const kind of ["fake", "live"] as const) {
  (kind === "live" ? describeLive : describe)(
    `a policy's text through the resident (applyText), on a ${kind} namespace`,
    () => {
      let node: TestNode;
      let stateDir: string;

      beforeAll(async () => {
        node = await newNode(kind, "nptext");
        await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
        await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
        for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
        stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-apply-text-"));
      });
      afterAll(async () => {
        await node?.destroy();
        if (stateDir) await rm(stateDir, { recursive: true, force: true });
      });

      it("applies each changed text as a cold apply of it would, and refuses an invalid one as parsePolicy does", async () => {
        const target = targetOf(node.runner(), stateDir);
        const first = { ...parsePolicy(TEXT, "policy.yaml"), keyDir: "", site: "home" };
        const { resident, events, stop } = await runningResident(target, first);
        const text = (t: string) => ({ text: t, name: "policy.yaml", site: "home", keyDir: "" });
        const addresses = async () =>
          (await ipJson(node, ["-4", "addr", "show", "dev", "lan0"])).flatMap((l) =>
            ((l.addr_info ?? []) as { local: string }[]).map((a) => a.local),
          );
        try {
          await resident.applyText(text(TEXT), "test");
          // One entry changed, then changed again from there: each time the kernel holds it.
          let now = TEXT;
          for (const third of ["8", "9"]) {
            const before = now;
            now = before.replace(
              /cidr: 192\.168\.\d\.0\/24, interface: lan0, address: 192\.168\.\d\.1 }\n {4}egress/,
              `cidr: 192.168.${third}.0/24, interface: lan0, address: 192.168.${third}.1 }\n    egress`,
            );
            expect(now).not.toBe(before);
            const result = await resident.applyText(text(now), "test");
            expect(result.changed).toBe(true);
            expect((await addresses()).sort()).toEqual(["192.168.6.1", `192.168.${third}.1`]);
            const cold = { ...parsePolicy(now, "policy.yaml"), keyDir: "", site: "home" };
            expect((await planSite(target, cold)).plan.changes).toEqual([]);
          }
          // Invalid entries: the same problems as a full read names, and nothing applied.
          for (const bad of [
            now.replace("address: 192.168.9.1 }", "address: 192.168.10.1 }"),
            now.replace("name: cams", "name: files"),
            now.replace("cidr: 192.168.9.0/24", "cidr: 192.168.9.1/24"),
          ]) {
            expect(bad).not.toBe(now);
            const got = await problems(() => resident.applyText(text(bad), "test"));
            expect(got).toEqual(await problems(async () => parsePolicy(bad, "policy.yaml")));
            expect(got).toMatchObject({ code: "NETPOL_E_POLICY_INVALID" });
            expect((await addresses()).sort()).toEqual(["192.168.6.1", "192.168.9.1"]);
          }
          expect(events.filter((e) => e.event === "error")).toEqual([]);
        } finally {
          await stop();
        }
      });
    },
  );
}

describe("one spoke's key through applyText, on a fake namespace", () => {
  it("changes that peer's key on the hub each time, as a cold apply of the text would", async () => {
    const node = await newNode("fake", "nptextwg");
    const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-apply-text-wg-"));
    const hub = generateKeyPair();
    await writeFile(path.join(dir, "hub.key"), `${hub.privateKey}\n`, { mode: 0o600 });
    await node.run("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    const keys = ["a", "b", "c"].map(() => generateKeyPair().publicKey);
    const policyOf = (k: readonly string[]) =>
      hubText({ hubKey: hub.publicKey, keys: k, tunnel: "wgt" });
    const target = targetOf(node.runner(), path.join(dir, "state"));
    const first = { ...parsePolicy(policyOf(keys), "hub.yaml"), keyDir: dir, site: "hub" };
    const { resident, events, stop } = await runningResident(target, first);
    try {
      const text = (t: string) => ({ text: t, name: "hub.yaml", site: "hub", keyDir: dir });
      await resident.applyText(text(policyOf(keys)), "test");
      for (const spoke of [1, 1, 2]) {
        keys[spoke] = generateKeyPair().publicKey;
        const now = policyOf(keys);
        const result = await resident.applyText(text(now), "test");
        expect(result.plan.changes.map((c) => c.kind)).toEqual(["wireguard"]);
        // `wg show NAME dump`: the interface's line, then one line per peer, its key first.
        const dump = (await node.run("wg", ["show", "wgt", "dump"])).split("\n").filter(Boolean);
        const peers = dump.slice(1).map((l) => l.split("\t").filter((f) => f !== "wgt")[0]);
        expect(peers.sort()).toEqual([...keys].sort());
        const cold = { ...parsePolicy(now, "hub.yaml"), keyDir: dir, site: "hub" };
        expect((await planSite(target, cold)).plan.changes).toEqual([]);
      }
      expect(events.filter((e) => e.event === "error")).toEqual([]);
    } finally {
      await stop();
      await node.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
