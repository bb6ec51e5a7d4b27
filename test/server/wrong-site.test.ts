import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { loadRecord } from "../../src/apply/state/record.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { buildApp } from "../../src/server/app.js";
import { newNode, rules, type TestNode } from "../support/node.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

const TOKEN = "t0ken-for-tests-0123456789";
/** Two sites: a push meant for one reaches the other's serve. */
const POLICY = `${VLAN_EGRESS_POLICY}  vps: {}\n`;

/**
 * Issue 18, item 8, over HTTP: `push --site vps` to home's serve. A server started for one site
 * (`serve --site home`) applies no other; one started without names the site its record says,
 * and a push of another is refused unless it says it is a rename (?replaceSite=1).
 */
describe("POST /apply of the wrong site (fake kernel)", () => {
  let node: TestNode;
  let stateDir: string;
  let app: FastifyInstance;
  let target: Target;

  const start = async (site?: string) => {
    node = await newNode("fake", "npsite");
    await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
    for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
    stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-site-"));
    target = targetOf(node.runner(), stateDir);
    app = await buildApp({
      target,
      token: TOKEN,
      keyDir: stateDir,
      ...(site ? { site } : {}),
      statusMaxAgeMs: 0,
    });
  };
  afterEach(async () => {
    await app?.close();
    await node?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });
  const push = (query: string) =>
    app.inject({
      method: "POST",
      url: `/apply?${query}`,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/yaml" },
      payload: POLICY,
    });
  const ownedRules = async () => (await rules(node)).filter((r) => r.protocol === "77");

  it("a server started for home refuses a push for vps with 409, before and after its first apply", async () => {
    await start("home");
    for (const query of ["site=vps", "site=vps&replaceSite=1", "site=vps&dryRun=1"]) {
      const r = await push(query);
      expect(r.statusCode, query).toBe(409);
      expect(r.json().error).toMatchObject({
        code: "NETPOL_E_WRONG_SITE",
        message: expect.stringContaining('this server applies site "home"'),
      });
    }
    expect(await loadRecord(target.files)).toBeUndefined();
    expect((await push("site=home")).statusCode).toBe(200);
    const applied = await ownedRules();
    expect(applied).not.toEqual([]);
    expect((await push("site=vps")).statusCode).toBe(409);
    expect(await ownedRules()).toEqual(applied);
  });

  it("a server without --site refuses a site other than the record's, unless ?replaceSite=1", async () => {
    await start();
    expect((await push("site=home")).statusCode).toBe(200);
    const applied = await ownedRules();
    for (const query of ["site=vps", "site=vps&dryRun=1"]) {
      const r = await push(query);
      expect(r.statusCode, query).toBe(409);
      expect(r.json().error).toMatchObject({
        code: "NETPOL_E_WRONG_SITE",
        message: expect.stringMatching(/runs site "home".*for site "vps".*replaceSite=1/s),
      });
    }
    expect(await ownedRules()).toEqual(applied);
    const renamed = await push("site=vps&replaceSite=1");
    expect(renamed.statusCode, renamed.body).toBe(200);
    expect((await loadRecord(target.files))?.site).toBe("vps");
    expect(await ownedRules()).toEqual([]);
  });
});
