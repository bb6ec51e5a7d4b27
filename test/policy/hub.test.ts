import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { formatCidr } from "../../src/net/cidr.js";
import { fakeKey, hubPolicy } from "../support/large-policy.js";
import { load, type PolicyObject, problemsOf, toYaml } from "./fixtures.js";

/** A VPS hub and three home spokes, each with a LAN it advertises. */
function hubOfThree(): PolicyObject {
  const spoke = (i: number) => ({
    interfaces: [{ name: "eth0", kind: "physical" }],
    networks: [{ name: "lan", cidr: `192.168.${i}.0/24`, interface: "eth0" }],
  });
  return {
    version: 1,
    sites: {
      vps: { wan: "eth0", interfaces: [{ name: "eth0", kind: "physical" }] },
      a: spoke(1),
      b: spoke(2),
      c: spoke(3),
    },
    tunnels: [
      {
        name: "wg0",
        topology: "hub",
        hub: "vps",
        members: [
          {
            site: "vps",
            address: "10.99.0.1/24",
            endpoint: "203.0.113.10:51820",
            publicKey: fakeKey(0),
            privateKeyFile: "vps.key",
          },
          ...["a", "b", "c"].map((site, i) => ({
            site,
            address: `10.99.0.${i + 2}/24`,
            publicKey: fakeKey(i + 1),
            privateKeyFile: `${site}.key`,
            advertise: ["lan"],
          })),
        ],
      },
    ],
  };
}

const peersOf = (policy: PolicyObject, site: string) => {
  const [wg] = compileSite(load(toYaml(policy)).intent, site).wireguard;
  return (wg?.peers ?? []).map((p) => ({ site: p.site, allowedIps: p.allowedIps.map(formatCidr) }));
};

describe("a hub-and-spoke tunnel", () => {
  it("gives the hub one peer per spoke, carrying that spoke's address and networks", () => {
    expect(peersOf(hubOfThree(), "vps")).toEqual([
      { site: "a", allowedIps: ["10.99.0.2/32", "192.168.1.0/24"] },
      { site: "b", allowedIps: ["10.99.0.3/32", "192.168.2.0/24"] },
      { site: "c", allowedIps: ["10.99.0.4/32", "192.168.3.0/24"] },
    ]);
  });

  it("gives a spoke the hub as its only peer, carrying the tunnel subnet and the other spokes' networks", () => {
    expect(peersOf(hubOfThree(), "b")).toEqual([
      {
        site: "vps",
        allowedIps: ["10.99.0.0/24", "10.99.0.1/32", "192.168.1.0/24", "192.168.3.0/24"],
      },
    ]);
  });

  it("routes the other spokes' networks into the tunnel on a spoke, and not its own", () => {
    const state = compileSite(load(toYaml(hubOfThree())).intent, "a");
    const viaTunnel = state.routes
      .filter((r) => r.type === "unicast" && r.device === "wg0")
      .map((r) => formatCidr(r.dst));
    expect(viaTunnel).toEqual(["192.168.2.0/24", "192.168.3.0/24"]);
  });

  it("lets a spoke exit only through the hub", () => {
    const p = hubOfThree();
    p.sites.vps.wan = "eth0";
    p.sites.a.external = [];
    p.sites.a.egress = [{ name: "out", from: ["lan"], via: "wg0" }];
    expect(() => load(toYaml(p))).not.toThrow();
    p.sites.a.egress[0].exit = "b";
    expect(problemsOf(p)).toEqual([
      "sites.a.egress[0].exit: say which member of wg0 the traffic exits through: set exit to one of vps",
    ]);
  });

  it("publishes one spoke's service on another through the hub, which carries its network", () => {
    const p = hubOfThree();
    p.sites.b.wan = "eth0";
    p.services = [
      { name: "web", kind: "tcp", publishOn: "b", port: 8080, target: "192.168.1.5:80" },
    ];
    const intent = load(toYaml(p)).intent;
    const hubPeers = compileSite(intent, "vps").wireguard[0]?.peers ?? [];
    expect(hubPeers.find((x) => x.site === "a")?.allowedIps.map(formatCidr)).toContain(
      "192.168.1.0/24",
    );
    p.services[0].clientAddress = "preserve";
    expect(problemsOf(p)).toEqual([
      "services[0].clientAddress: b and a are both spokes of wg0: replies keeping the client's address would need a default route through the hub for one spoke only; publish it on the hub vps, or use clientAddress: proxy",
    ]);
  });

  it("refuses a hub that is not declared right", () => {
    const noHub = hubOfThree();
    delete noHub.tunnels[0].hub;
    expect(problemsOf(noHub)).toEqual(["tunnels[0].topology: name the hub site: hub: SITE"]);
    const stranger = hubOfThree();
    stranger.tunnels[0].hub = "d";
    expect(problemsOf(stranger)).toEqual([
      "tunnels[0].hub: the hub d is not a member of wg0; add it under members",
    ]);
    const mesh = hubOfThree();
    mesh.tunnels[0].topology = "mesh";
    expect(problemsOf(mesh)).toContain(
      "tunnels[0].hub: a hub needs `topology: hub`; in a mesh every member peers with every other",
    );
  });

  it("needs the hub to have an endpoint, or every spoke", () => {
    const p = hubOfThree();
    delete p.tunnels[0].members[0].endpoint;
    p.tunnels[0].members[1].endpoint = "198.51.100.1:51820";
    expect(problemsOf(p)).toEqual([
      "tunnels[0].members[2]: neither the hub vps nor spoke b has an endpoint, so neither can dial; give the hub an endpoint",
      "tunnels[0].members[3]: neither the hub vps nor spoke c has an endpoint, so neither can dial; give the hub an endpoint",
    ]);
  });

  it("holds a thousand spokes: the hub has a thousand peers, a spoke one", () => {
    const intent = load(hubPolicy(1000)).intent;
    expect(compileSite(intent, "vps").wireguard[0]?.peers).toHaveLength(1000);
    const spoke = compileSite(intent, "s7").wireguard[0]?.peers ?? [];
    expect(spoke.map((x) => x.site)).toEqual(["vps"]);
    // The tunnel subnet plus the 999 other spokes' LANs.
    expect(spoke[0]?.allowedIps).toHaveLength(1 + 1 + 999);
  });
});
