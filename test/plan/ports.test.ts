import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { targetOf } from "../../src/apply/target.js";
import type { SiteState } from "../../src/compile/desired.js";
import { parseCidr } from "../../src/net/cidr.js";
import type { Listener } from "../../src/plan/live.js";
import { portConflicts } from "../../src/plan/ports.js";
import type { LiveState } from "../../src/plan/types.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { fakeNode, ownedSnapshot } from "../support/node.js";

const cidr = (t: string) => {
  const c = parseCidr(t);
  if (!c.ok) throw new Error(t);
  return c.value;
};

const desired = {
  published: { wan: "wan0", ports: [{ service: "ssh", kind: "tcp", port: 2222 }] },
} as unknown as SiteState;

function live(listeners: Listener[], publishedElements: string[] = []): LiveState {
  return {
    links: [],
    addresses: [
      { device: "wan0", cidr: cidr("198.51.100.2/24") },
      { device: "lan0", cidr: cidr("192.168.1.1/24") },
    ],
    routes: { owned: [], foreign: [] },
    rules: { owned: [], foreign: [] },
    nft:
      publishedElements.length > 0
        ? {
            fingerprint: undefined,
            skeleton: "",
            elements: new Map([["published4", { list: publishedElements, merge: false }]]),
          }
        : undefined,
    wireguard: [],
    sysctls: new Map(),
    listeners,
  };
}

const sshd = { name: "sshd", pid: 812 };
const on = (address: string, extra: Partial<Listener> = {}): Listener => ({
  proto: "tcp",
  address,
  port: 2222,
  process: sshd,
  ...extra,
});

describe("ports another listener serves on the uplink", () => {
  it.each([
    ["every address", on("0.0.0.0"), "0.0.0.0:2222"],
    ["every address of both families", on("*"), "*:2222"],
    ["every IPv6 address", on("::"), "[::]:2222"],
    ["the uplink's address", on("198.51.100.2"), "198.51.100.2:2222"],
    ["the uplink itself", on("0.0.0.0", { device: "wan0" }), "0.0.0.0%wan0:2222"],
  ])("refuses a port a listener on %s serves, naming it", (_where, listener, shown) => {
    expect(portConflicts(desired, live([listener]))).toEqual([
      `port 2222/tcp is served here by sshd (pid 812) on ${shown}; publishing service ssh there would take its traffic from wan0. Publish another port, or stop that listener first`,
    ]);
  });

  it.each([
    ["loopback", on("127.0.0.1")],
    ["IPv6 loopback", on("::1")],
    ["another device's address", on("192.168.1.1")],
    ["another device", on("0.0.0.0", { device: "lan0" })],
    ["the other protocol", on("0.0.0.0", { proto: "udp" })],
    ["another port", on("0.0.0.0", { port: 22 })],
  ])("lets a listener on %s be", (_where, listener) => {
    expect(portConflicts(desired, live([listener]))).toEqual([]);
  });

  it("names a socket with no process it can see", () => {
    const [conflict] = portConflicts(desired, live([{ proto: "tcp", address: "*", port: 2222 }]));
    expect(conflict).toContain("served here by a socket of no process netpol can see");
  });

  it("does not refuse a port netpol publishes already: a listener that came later is no reason to stop applying", () => {
    expect(
      portConflicts(desired, live([on("0.0.0.0")], ["tcp . 2222 : 192.168.1.22 . 22"])),
    ).toEqual([]);
  });
});

describe("ports netpol's PROXY-protocol relay holds", () => {
  const relayed = {
    site: "vps",
    published: { wan: "wan0", ports: [{ service: "ssh", kind: "tcp", port: 2222, relay: true }] },
    relay: { wan: "wan0", ports: [], http: { port: 9479, routes: [] } },
  } as unknown as SiteState;
  const haproxy = { name: "haproxy", pid: 4242 };
  const withRelay = (listeners: Listener[], pid = 4242): LiveState => ({
    ...live(listeners),
    relay: { files: { config: "/s/relay.cfg", pid: "/s/relay.pid" }, config: "", pid },
  });

  it("are no clash: the relay's own listeners on the uplink and on loopback", () => {
    const own = [
      on("0.0.0.0", { device: "wan0", process: haproxy }),
      on("127.0.0.1", { port: 9479, process: haproxy }),
    ];
    expect(portConflicts(relayed, withRelay(own))).toEqual([]);
  });

  it("refuses the relay's published port where another program serves it, even one netpol published by DNAT before", () => {
    const live = withRelay([on("0.0.0.0")]);
    const withDnat = {
      ...live,
      nft: {
        fingerprint: undefined,
        skeleton: "",
        elements: new Map([
          ["published4", { list: ["tcp . 2222 : 192.168.1.22 . 22"], merge: false }],
        ]),
      },
    } as LiveState;
    expect(portConflicts(relayed, withDnat)).toEqual([
      expect.stringContaining("port 2222/tcp is served here by sshd (pid 812)"),
    ]);
  });

  it("refuses the relay's loopback port where another program serves it, naming the setting", () => {
    const other = on("127.0.0.1", { port: 9479, process: { name: "node", pid: 99 } });
    expect(portConflicts(relayed, withRelay([other]))).toEqual([
      "port 9479/tcp, the PROXY-protocol relay's (proxy.relayPort), is served here by node (pid 99) on 127.0.0.1:9479; set sites.vps.proxy.relayPort to a free port",
    ]);
  });

  it("counts a haproxy that is not netpol's relay (another pid) as another program", () => {
    const stray = on("127.0.0.1", { port: 9479, process: haproxy });
    expect(portConflicts(relayed, withRelay([stray], 5000))).toHaveLength(1);
  });
});

describe("a published port another listener serves, on a fake kernel", () => {
  it("is a conflict in the plan, and an apply changes nothing", async () => {
    const node = fakeNode();
    node.kernel.plug("wan0", "198.51.100.2/24");
    node.kernel.state.sockets.push({
      proto: "tcp",
      local: "*",
      port: 443,
      process: { name: "caddy", pid: 77 },
    });
    const key = generateKeyPair().publicKey;
    const text = `version: 1
sites:
  vps: { wan: wan0, interfaces: [{ name: wan0, kind: physical }] }
  home: { interfaces: [{ name: lan0, kind: physical }], networks: [{ name: lan, cidr: 192.168.1.0/24, interface: lan0 }] }
tunnels:
  - name: t1
    members:
      - { site: vps, address: 10.97.0.1/24, endpoint: 198.51.100.2:51820, publicKey: ${key}, privateKeyFile: vps.key }
      - { site: home, address: 10.97.0.2/24, publicKey: ${generateKeyPair().publicKey}, privateKeyFile: home.key }
services:
  - { name: web, kind: tcp, publishOn: vps, port: 443, target: "192.168.1.10:443" }
`;
    const policy = { ...parsePolicy(text, "p.yaml"), keyDir: "/nonexistent-keys", site: "vps" };
    const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-ports-"));
    const target = targetOf(node.runner(), path.join(dir, "state"));
    const before = await ownedSnapshot(node);
    const { plan } = await planSite(target, policy);
    expect(plan.conflicts).toEqual([
      expect.stringContaining("port 443/tcp is served here by caddy (pid 77) on *:443"),
    ]);
    await expect(applySite(target, policy, "test")).rejects.toMatchObject({
      code: "NETPOL_E_FOREIGN_STATE",
    });
    expect(await ownedSnapshot(node)).toEqual(before);
    await rm(dir, { recursive: true, force: true });
  });
});
