import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { targetOf } from "../../src/apply/target.js";
import { startCaddy } from "../../src/lab/caddy.js";
import { kill, startInNetns, stopWireguardGoByName } from "../../src/lab/processes.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { createRunner } from "../../src/system/runner.js";
import { describeLive } from "../support/layers.js";
import {
  createNetns,
  type Netns,
  startWireguardGo,
  uniqueSuffix,
  type WireguardGo,
} from "../support/netns.js";
import { liveNode, ownedSnapshot } from "../support/node.js";

// A VPS that already serves things of its own: the user's Caddy on :80, an sshd-like listener
// on 2222, the user's own WireGuard tunnel (wg-quick, say) on 51821. A policy that publishes
// any of those ports would take their traffic by DNAT: refused by plan and apply, naming who
// holds the port, before anything is applied. Its own tunnel's port comes from the policy.
describeLive("ports another listener on the site already serves", () => {
  let ns: Netns;
  let dir: string;
  let caddy: number | undefined;
  let ssh: number | undefined;
  let userWg: WireguardGo | undefined;
  const wgName = `wp${uniqueSuffix()}`;
  const keys = { vps: generateKeyPair(), home: generateKeyPair() };

  const policy = (port: number, kind = "tcp") =>
    ({
      ...parsePolicy(
        `version: 1
sites:
  vps:
    wan: wan0
    interfaces: [{ name: wan0, kind: physical }]
  home:
    networks: [{ name: lan, cidr: 192.168.1.0/24, interface: lan0 }]
    interfaces: [{ name: lan0, kind: physical }]
tunnels:
  - name: t1
    members:
      - { site: vps, interface: ${wgName}, address: 10.97.0.1/24, endpoint: 198.51.100.2:51820, publicKey: ${keys.vps.publicKey}, privateKeyFile: vps.key }
      - { site: home, interface: h${wgName}, address: 10.97.0.2/24, publicKey: ${keys.home.publicKey}, privateKeyFile: home.key }
services:
  - { name: svc, kind: ${kind}, publishOn: vps, port: ${port}, target: "192.168.1.10:8080" }
`,
        "ports.yaml",
      ),
      keyDir: dir,
      site: "vps",
    }) as const;
  const target = () => targetOf(createRunner(ns.name), path.join(dir, "state"));

  beforeAll(async () => {
    ns = await createNetns("npports");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-ports-"));
    await writePrivateKey(path.join(dir, "vps.key"), keys.vps.privateKey);
    await ns.exec(["ip", "link", "add", "wan0", "type", "veth", "peer", "name", "wan1"]);
    await ns.exec(["ip", "link", "set", "wan0", "up"]);
    await ns.exec(["ip", "address", "add", "198.51.100.2/24", "dev", "wan0"]);
    caddy = await startCaddy(ns.name, dir);
    ssh = startInNetns(ns.name, [
      process.execPath,
      "-e",
      'require("net").createServer().listen(2222,"0.0.0.0");require("net").createServer().listen(2223,"127.0.0.1")',
    ]);
    userWg = await startWireguardGo(ns, `wu${uniqueSuffix()}`);
    await ns.exec(["wg", "set", userWg.ifname, "listen-port", "51821"]);
    // The listeners are up once ss lists them.
    for (let i = 0; i < 50; i++) {
      const listed = (await ns.exec(["ss", "-H", "-l", "-n", "-t"])).stdout;
      if (listed.includes(":2222") && listed.includes(":80")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    if (caddy) kill(caddy);
    if (ssh) kill(ssh);
    await userWg?.stop();
    await stopWireguardGoByName([wgName]);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each([
    [
      80,
      "tcp",
      /port 80\/tcp is served here by caddy \(pid \d+\) on (\*|\[::\]|0\.0\.0\.0):80; publishing service svc there would take its traffic from wan0/,
    ],
    [2222, "tcp", /port 2222\/tcp is served here by node \(pid \d+\) on 0\.0\.0\.0:2222/],
    [51821, "udp", /port 51821\/udp is served here by wireguard-go \(pid \d+\)/],
  ])(
    "refuses to publish %s/%s, naming who holds it, and applies nothing",
    async (port, kind, says) => {
      const node = liveNode(ns.name);
      const before = await ownedSnapshot(node);
      const { plan } = await planSite(target(), policy(port, kind));
      expect(plan.conflicts).toEqual([expect.stringMatching(says)]);
      const err = await applySite(target(), policy(port, kind), "test").catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "NETPOL_E_FOREIGN_STATE" });
      expect(String((err as Error).message)).toMatch(says);
      expect(await ownedSnapshot(node)).toEqual(before);
    },
  );

  it("publishes a port only loopback listens on, and keeps publishing it once a listener comes later", async () => {
    expect((await planSite(target(), policy(2223))).plan.conflicts).toEqual([]);
    const applied = await applySite(target(), policy(2224), "test");
    expect(applied.changed).toBe(true);
    const late = startInNetns(ns.name, [
      process.execPath,
      "-e",
      'require("net").createServer().listen(2224,"0.0.0.0")',
    ]);
    try {
      await new Promise((r) => setTimeout(r, 500));
      // The port is netpol's already: a listener that came later does not stop the applies
      // that keep the rest of the policy in force.
      const again = await applySite(target(), policy(2224), "test");
      expect(again.plan.conflicts).toEqual([]);
    } finally {
      kill(late);
    }
  });
});
