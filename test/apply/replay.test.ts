import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import type { Lab } from "../../src/lab/lab.js";
import { routeKey, ruleKey } from "../../src/plan/keys.js";
import { labInput, siteTarget } from "../support/lab.js";
import { fakeHome } from "../support/lab-home.js";
import { routes, rules, type TestNode } from "../support/node.js";

/**
 * Random-order replay on the fake kernel: policies applied one after another, in any order,
 * each from whatever the previous one left. After every step the state read back must be
 * exactly the compiled desired state, and everything netpol does not own must be as it was.
 */

interface Shape {
  /** Which of the extra egresses exist, each with its own except list. */
  readonly egresses: readonly { readonly id: number; readonly except: readonly number[] }[];
  readonly tunnel: boolean;
  readonly vl6Address: boolean;
  /** An IPv6 network on VLAN 6, leaving by the provider with the IPv4 one. */
  readonly ipv6: boolean;
}

const shape: fc.Arbitrary<Shape> = fc.record({
  egresses: fc.uniqueArray(
    fc.record({
      id: fc.integer({ min: 0, max: 5 }),
      except: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
    }),
    { maxLength: 3, selector: (e) => e.id },
  ),
  tunnel: fc.boolean(),
  vl6Address: fc.boolean(),
  ipv6: fc.boolean(),
});

/** The lab's policy for home, edited into the shape. */
function policyOf(lab: Lab, s: Shape) {
  return labInput(lab, "home", (text) => {
    let t = text;
    if (!s.vl6Address) t = t.replace(", address: 192.168.6.1 }", " }");
    if (!s.tunnel) t = t.slice(0, t.indexOf("\ntunnels:")).concat("\n");
    if (s.ipv6)
      t = t
        .replace("        from: [files]", "        from: [files, files6]")
        .replace(
          "    networks:\n",
          "    networks:\n      - { name: files6, cidr: 2001:db8:6::/64, interface: vl6, address: 2001:db8:6::1 }\n",
        );
    const nets = s.egresses.map(
      (e) => `      - { name: n${e.id}, cidr: 10.20${e.id}.0.0/24, interface: lan }`,
    );
    const egress = s.egresses.map(
      (e) =>
        `      - { name: x${e.id}, from: [n${e.id}], via: ${lab.names.hma}, except: [${e.except.map((x) => `10.1${x}.0.0/16`).join(", ")}], table: ${50 + e.id}, priority: ${2000 + 2 * e.id} }`,
    );
    return t
      .replace("    networks:\n", `    networks:\n${nets.join("\n")}${nets.length ? "\n" : ""}`)
      .replace("    egress:\n", `    egress:\n${egress.join("\n")}${egress.length ? "\n" : ""}`);
  });
}

/** What netpol does not own: other protocols' routes and rules, other nft tables, other links. */
async function foreign(node: TestNode, lab: Lab) {
  const nft = await node.run("nft", ["list", "ruleset"]);
  const linkNames = JSON.parse(await node.run("ip", ["-json", "link", "show"])) as {
    ifname: string;
  }[];
  return {
    routes: (await routes(node)).filter((r) => r.protocol !== "77" && r.protocol !== "2"),
    rules: (await rules(node)).filter((r) => r.protocol !== "77"),
    nft: nft.slice(0, Math.max(0, nft.indexOf("table inet netpol"))) || nft,
    links: linkNames.map((l) => l.ifname).filter((n) => n !== lab.names.wgHome),
  };
}

describe("random-order replay on the fake kernel", () => {
  it("after each apply, reads back exactly the compiled policy plus the foreign state it started with", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(shape, { minLength: 1, maxLength: 4 }), async (sequence) => {
        const { lab, node, down } = await fakeHome();
        try {
          await node.run("ip", [
            "route",
            "add",
            "table",
            "42",
            "10.124.0.0/24",
            "via",
            "198.51.100.1",
          ]);
          await node.run("ip", [
            "rule",
            "add",
            "priority",
            "5000",
            "from",
            "10.200.0.0/16",
            "lookup",
            "42",
          ]);
          const before = await foreign(node, lab);
          const target = siteTarget(lab, "home", node.runner());
          for (const s of sequence) {
            const input = policyOf(lab, s);
            await applySite(target, input, "replay");
            const { desired, live, plan } = await planSite(target, input);
            expect(plan.changes).toEqual([]);
            expect(live.routes.owned.map(routeKey).sort()).toEqual(
              desired.routes.map(routeKey).sort(),
            );
            expect(live.rules.owned.map(ruleKey).sort()).toEqual(desired.rules.map(ruleKey).sort());
            const tunnelLinks = live.links.filter((l) => l.name === lab.names.wgHome);
            expect(tunnelLinks.length).toBe(s.tunnel ? 1 : 0);
            expect(await foreign(node, lab)).toEqual(before);
          }
        } finally {
          await down();
        }
      }),
      { numRuns: 12 },
    );
  });
});
