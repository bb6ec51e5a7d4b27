import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordPath } from "../../src/apply/state/record.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { ERRORS } from "../../src/errors.js";
import { buildApp } from "../../src/server/app.js";
import { describeLive } from "../support/layers.js";
import { newNode, rules, type TestNode } from "../support/node.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

const TOKEN = "t0ken-for-tests-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };

// The same tests on a fake kernel (unit layer) and on a real namespace (live layer).
for (const kind of ["fake", "live"] as const) {
  (kind === "live" ? describeLive : describe)(`the HTTP app, on a ${kind} namespace`, () => {
    let ns: TestNode;
    let stateDir: string;
    let app: FastifyInstance;
    let target: Target;

    beforeAll(async () => {
      ns = await newNode(kind, "npsrv");
      await ns.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
      await ns.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
      for (const d of ["lan0", "lan1", "ext0"]) await ns.run("ip", ["link", "set", d, "up"]);
      stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-srv-"));
      target = targetOf(ns.runner(), stateDir);
      app = await buildApp({
        target,
        token: TOKEN,
        keyDir: stateDir,
        site: "home",
        bodyLimit: 4096,
        applyLimit: { max: 19, timeWindow: 60_000 },
        statusMaxAgeMs: 0,
        revertTimer: () => undefined,
      });
    });
    afterAll(async () => {
      await app?.close();
      await ns?.destroy();
      if (stateDir) await rm(stateDir, { recursive: true, force: true });
    });

    const ownedRules = async () => (await rules(ns)).filter((r) => r.protocol === "77");
    const post = (body: string, type = "application/yaml", url = "/apply") =>
      app.inject({
        method: "POST",
        url,
        headers: { ...auth, "content-type": type },
        payload: body,
      });

    it("answers /healthz without a token", async () => {
      const r = await app.inject({ url: "/healthz" });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toEqual({ ok: true });
    });

    it.each([
      ["no token", {}],
      ["a wrong token", { authorization: "Bearer not-the-token-at-all" }],
      ["another scheme", { authorization: `Basic ${TOKEN}` }],
    ])("refuses %s with 401 and says nothing else", async (_name, headers) => {
      for (const url of ["/status", "/plan", "/metrics", "/nowhere"]) {
        const r = await app.inject({ url, headers });
        expect(r.statusCode).toBe(401);
        expect(r.json()).toEqual({
          error: { code: "NETPOL_E_UNAUTHORIZED", message: "missing or wrong token" },
        });
      }
      const r = await app.inject({
        method: "POST",
        url: "/apply",
        headers: { ...headers, "content-type": "application/yaml" },
        payload: VLAN_EGRESS_POLICY,
      });
      expect(r.statusCode).toBe(401);
    });

    it("reports no policy before the first apply", async () => {
      const status = await app.inject({ url: "/status", headers: auth });
      expect(status.statusCode).toBe(200);
      expect(status.json()).toMatchObject({ site: null, policy: null, drift: null });
      const plan = await app.inject({ url: "/plan", headers: auth });
      expect(plan.statusCode).toBe(404);
      expect(plan.json().error.code).toBe("NETPOL_E_NO_POLICY");
    });

    it.each([
      ["malformed YAML", "version: 1\nsites: [\n", "application/yaml", 3],
      ["malformed JSON", '{"version": 1, "sites": {', "application/json", 1],
      [
        "a schema violation",
        "version: 1\nsites:\n  home:\n    networks:\n      - { name: x, cidr: 192.168.6.1/24, interface: lan0 }\n",
        "application/yaml",
        5,
      ],
    ])(
      "rejects %s with 422 and the CLI's file:line:col list, applying nothing",
      async (_name, body, type, line) => {
        const r = await post(body, type);
        expect(r.statusCode).toBe(422);
        const { error } = r.json();
        expect(error.code).toBe("NETPOL_E_POLICY_INVALID");
        expect(error.problems[0]).toMatchObject({ file: "request body", line });
        await expect(stat(recordPath(target.files))).rejects.toThrow();
      },
    );

    it("refuses a confirm window that is not 1 to 86400 decimal seconds, applying nothing", async () => {
      const before = await ownedRules();
      for (const confirm of ["1e99", "0x10", "2147484", "-1", "1.5"]) {
        const r = await post(VLAN_EGRESS_POLICY, "application/yaml", `/apply?confirm=${confirm}`);
        expect(r.statusCode).toBe(400);
        expect(r.json().error).toMatchObject({
          code: "NETPOL_E_USAGE",
          message: expect.stringContaining("from 1 to 86400"),
        });
      }
      expect(await ownedRules()).toEqual(before);
    });

    it("says host bits are set, with the fix, at the policy path", async () => {
      const r = await post(VLAN_EGRESS_POLICY.replace("192.168.6.0/24", "192.168.6.1/24"));
      expect(r.json().error.problems).toEqual([
        expect.objectContaining({
          path: "sites.home.networks[0].cidr",
          message: "192.168.6.1/24 has host bits set; did you mean 192.168.6.0/24?",
        }),
      ]);
    });

    it("rejects an oversized body with 413 and a wrong content type with 415", async () => {
      const big = await post(`${VLAN_EGRESS_POLICY}#${"x".repeat(5000)}\n`);
      expect(big.statusCode).toBe(413);
      expect(big.json().error.code).toBe("NETPOL_E_PAYLOAD");
      const xml = await post("<policy/>", "application/xml");
      expect(xml.statusCode).toBe(415);
      expect(xml.json().error.code).toBe("NETPOL_E_PAYLOAD");
      const empty = await post("   ");
      expect(empty.statusCode).toBe(400);
    });

    it("refuses a key file name that escapes the key directory, applying nothing", async () => {
      const pub = "QwiYNlQXBHxjBEk/LGWJKlstzfZ2U4VtuI/o6GU2xHs=";
      const withTunnel = `${VLAN_EGRESS_POLICY}  vps:\n    wan: eth0\n    interfaces: [{ name: eth0, kind: physical }]\ntunnels:\n  - name: wgsrv0\n    members:\n      - { site: vps, address: 10.9.0.1/24, endpoint: "203.0.113.10:51820", publicKey: "${pub}", privateKeyFile: x.key }\n      - { site: home, address: 10.9.0.2/24, publicKey: "WBoaT5t3SPNzmXqHnXmYrZnrweV88qFWhQFPT7sEuzk=", privateKeyFile: ../../../etc/shadow }\n`;
      const r = await post(withTunnel);
      expect(r.statusCode).toBe(422);
      expect(r.json().error).toMatchObject({
        code: "NETPOL_E_KEY_FILE",
        message: expect.stringContaining("outside the key directory"),
      });
      expect(await ownedRules()).toEqual([]);
    });

    it("plans with ?dryRun=1 without applying, then applies, then reports the policy in force and no drift", async () => {
      const dry = await post(VLAN_EGRESS_POLICY, "application/yaml", "/apply?dryRun=1");
      expect(dry.statusCode).toBe(200);
      expect(dry.json().plan.inSync).toBe(false);
      expect(await ownedRules()).toEqual([]);

      const applied = await post(VLAN_EGRESS_POLICY);
      expect(applied.statusCode, applied.body).toBe(200);
      expect(applied.json()).toMatchObject({ changed: true });
      expect(await ownedRules()).toContainEqual(expect.objectContaining({ table: "3" }));

      const status = (await app.inject({ url: "/status", headers: auth })).json();
      expect(status).toMatchObject({
        site: "home",
        drift: { inSync: true },
        policy: { appliedBy: expect.stringMatching(/^http /) },
      });
      expect(status.egress).toEqual([
        {
          name: "out",
          device: "ext0",
          deviceUp: true,
          failClosed: true,
          failClosedEngaged: false,
          droppedPackets: 0,
          // Not probed: the policy asks for no health checks.
          health: null,
        },
      ]);
      expect(status.forwardDrops).toEqual([]);
      const plan = await app.inject({ url: "/plan", headers: auth });
      expect(plan.json()).toMatchObject({ inSync: true, changes: [] });
    });

    it("says when another table's forward chain drops by policy, as Docker's does", async () => {
      // What Docker leaves through iptables-nft when it turns forwarding on itself.
      const docker = [
        "table ip filter {",
        "  chain DOCKER-USER {",
        "  }",
        "  chain FORWARD {",
        "    type filter hook forward priority filter; policy drop;",
        "  }",
        "}",
      ].join("\n");
      await ns.run("nft", ["-f", "-"], `${docker}\n`);
      try {
        const status = (await app.inject({ url: "/status", headers: auth })).json();
        expect(status.forwardDrops).toEqual([{ table: "ip filter", chain: "FORWARD" }]);
        expect(status.drift).toMatchObject({ inSync: true });
      } finally {
        await ns.run("nft", ["-f", "-"], "delete table ip filter\n");
      }
    });

    it("accepts the same policy as JSON", async () => {
      const { parse } = await import("yaml");
      const r = await post(JSON.stringify(parse(VLAN_EGRESS_POLICY)), "application/json");
      expect(r.statusCode).toBe(200);
    });

    it("serves Prometheus metrics", async () => {
      const r = await app.inject({ url: "/metrics", headers: auth });
      expect(r.statusCode).toBe(200);
      expect(r.headers["content-type"]).toContain("text/plain");
      expect(r.body).toMatch(/^netpol_drift_changes 0$/m);
      expect(r.body).toMatch(/^netpol_egress_device_up\{egress="out"\} 1$/m);
      expect(r.body).toMatch(/^netpol_applies_total\{result="changed"\} 1$/m);
    });

    it("answers an unknown route with 404 in the same shape", async () => {
      const r = await app.inject({ url: "/nowhere", headers: auth });
      expect(r.statusCode).toBe(404);
      expect(r.json()).toEqual({ error: { code: "NETPOL_E_NOT_FOUND", message: "no such route" } });
    });

    it("rate-limits applies", async () => {
      const codes: number[] = [];
      for (let i = 0; i < 19; i++) codes.push((await post(VLAN_EGRESS_POLICY)).statusCode);
      expect(codes).toContain(429);
      expect(codes.filter((c) => c !== 429).every((c) => c === 200)).toBe(true);
      const limited = await post(VLAN_EGRESS_POLICY);
      expect(limited.json().error.code).toBe("NETPOL_E_RATE_LIMITED");
    });

    it("never returns a private key or the token", async () => {
      const r = await app.inject({ url: "/status", headers: auth });
      expect(r.body).not.toContain(TOKEN);
      expect(r.body).not.toMatch(/private/i);
    });
  });
}

describe("the error catalog", () => {
  it("documents every code in docs/api.md", async () => {
    const api = await readFile(path.join(import.meta.dirname, "../../docs/api.md"), "utf8");
    for (const code of Object.keys(ERRORS)) expect(api, code).toContain(code);
  });
});
