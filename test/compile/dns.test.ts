import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { chainsOf } from "../../src/compile/chains.js";
import { compileSite } from "../../src/compile/compile.js";
import { parsePolicy } from "../../src/policy/load.js";
import { switchPath } from "../../src/system/path-switch.js";
import { chainPolicy, diagnosticsOf } from "../policy/fixtures.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";

/** VLAN 6 by ext0, else ext1; its DNS to each path's resolver. */
const policy = (dns: string) => chainPolicy(`dns: ${dns}`);
const PER_PATH = "{ resolvers: { ext0: [10.1.0.53], ext1: [10.2.0.53] } }";

const loaded = (dns = PER_PATH) => ({
  ...parsePolicy(policy(dns), "dns.yaml"),
  keyDir: "",
  site: "home",
});
const nft = (dns = PER_PATH) => {
  const state = compileSite(loaded(dns).intent, "home");
  const chain = (name: string) => state.nftChains.find((c) => c.name === name)?.rules ?? [];
  const set = (name: string) => state.nftSets.find((s) => s.name === name)?.elements;
  return { chain, set };
};

describe("DNS that follows the egress", () => {
  it("sends the networks' port 53 to the active path's chain before anything else marks it", () => {
    const { chain, set } = nft();
    expect(chain("egress_1")[0]).toBe("meta l4proto { tcp, udp } th dport vmap @egress_1_dns");
    expect(set("egress_1_dns")).toEqual(["53 : goto egress_1_dns_0"]);
    // Each path's chain gives the path's own mark; the NAT picks the resolver by it.
    expect(chain("egress_1_dns_0").at(-1)).toBe(
      "meta mark set meta mark & 0x00ffffff | 0x04000000",
    );
    expect(chain("egress_1_dns_1").at(-1)).toBe(
      "meta mark set meta mark & 0x00ffffff | 0x06000000",
    );
    expect(set("dns_to4")).toEqual(["0x04000000 : 10.1.0.53", "0x06000000 : 10.2.0.53"]);
    expect(chain("nat_prerouting")).toContain(
      'meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 dnat ip to meta mark & 0xff000000 map @dns_to4 comment "DNS follows the egress"',
    );
    // No IPv6 resolver: IPv6 DNS is dropped rather than left to the router's resolver.
    expect(chain("egress_1_dns_0")[0]).toContain("meta nfproto ipv6 counter drop");
    expect(chain("egress_1_dns_none")).toEqual([
      'counter drop comment "DNS of egress out: no path is up"',
    ]);
  });

  it("drops DNS to other servers and DoT to undeclared resolvers when told", () => {
    const { chain } = nft("{ resolvers: [10.9.0.53], other: drop, blockDoT: true }");
    expect(chain("egress_1").slice(0, 5)).toEqual([
      'ip daddr != @egress_1_dns_resolvers4 meta l4proto { tcp, udp } th dport 853 counter drop comment "DoT elsewhere, egress out"',
      'meta nfproto ipv6 meta l4proto { tcp, udp } th dport 853 counter drop comment "DoT elsewhere, egress out"',
      "fib daddr type local meta l4proto { tcp, udp } th dport vmap @egress_1_dns",
      "ip daddr @egress_1_dns_resolvers4 meta l4proto { tcp, udp } th dport vmap @egress_1_dns",
      'meta l4proto { tcp, udp } th dport 53 counter drop comment "DNS elsewhere, egress out"',
    ]);
  });

  it("refuses per-path resolvers that miss a path or name one the egress does not have", () => {
    const missing = diagnosticsOf(policy("{ resolvers: { ext0: [10.1.0.53] } }"));
    expect(missing.map((d) => d.message)).toContain(
      "name the resolvers reached through ext1 too (or one list for the whole chain)",
    );
    const stranger = diagnosticsOf(
      policy("{ resolvers: { ext0: [10.1.0.53], ext1: [10.2.0.53], ext9: [10.3.0.53] } }"),
    );
    expect(stranger.map((d) => d.message)).toContain(
      "ext9 is not a path of this egress; name one of: ext0, ext1",
    );
  });

  it("leaves today's egress without dns unchanged", () => {
    const without = policy("{ resolvers: [10.9.0.53] }").replace(
      ", dns: { resolvers: [10.9.0.53] }",
      "",
    );
    const state = compileSite(parsePolicy(without, "x.yaml").intent, "home");
    expect(state.nftChains.flatMap((c) => c.rules).join("\n")).not.toContain("dns");
  });
});

describe("a path switch moves DNS with the route, and a plan keeps it (fake kernel)", () => {
  let kernel: FakeKernel;
  let target: Target;
  let dir: string;
  const element = () =>
    /map egress_1_dns \{[^}]*?elements = \{ ([^}]*?) \}/.exec(
      kernel.must("nft", ["list", "table", "inet", "netpol"]),
    )?.[1];
  const chain = () => {
    const { intent } = loaded();
    const site = intent.sites[0];
    const found = site ? chainsOf(intent, site)[0] : undefined;
    if (!found) throw new Error("no chain");
    return found;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-dns-"));
    kernel = new FakeKernel();
    kernel.must("ip", ["link", "set", "dev", "lo", "up"]);
    kernel.plug("lan0");
    kernel.plug("ext0", "10.1.0.2/24");
    kernel.plug("ext1", "10.2.0.2/24");
    target = targetOf(kernel.runner("dns"), dir);
    await applySite(target, loaded(), "test");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("replaces the map's element on a switch; plan and apply take it as in force", async () => {
    expect(element()).toBe("53 : goto egress_1_dns_0");
    await switchPath(target.runner, chain(), 1, 77);
    expect(element()).toBe("53 : goto egress_1_dns_1");
    expect((await planSite(target, loaded())).plan.changes).toEqual([]);
    await switchPath(target.runner, chain(), "none", 77);
    expect(element()).toBe("53 : goto egress_1_dns_none");
    expect((await applySite(target, loaded(), "test")).changed).toBe(false);
    expect(element()).toBe("53 : goto egress_1_dns_none");
  });
});
