import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { withNetworkPrefix } from "../../src/compile/network-prefix.js";
import { parseCidr } from "../../src/net/cidr.js";
import { parsePolicy } from "../../src/policy/load.js";

const text = (cidr: string, except = "") => `version: 1
sites:
  r:
    interfaces: [{ name: lan0, kind: physical }]
    external: [{ name: ext0 }]
    networks:
      - { name: n0, cidr: 10.0.0.0/24, interface: lan0 }
      - { name: n1, cidr: ${cidr}, interface: lan0 }
    egress:
      - { name: e0, from: [n0], via: ext0, masquerade: true${except} }
      - { name: e1, from: [n1], via: ext0, masquerade: true }
`;
const cidr = (t: string) => {
  const parsed = parseCidr(t);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};
const compiled = (t: string) => {
  const intent = parsePolicy(t, "p.yaml").intent;
  return { intent, state: compileSite(intent, "r") };
};

describe("a network's prefix moved in the compiled state", () => {
  const change = { site: "r", before: cidr("10.0.1.0/24"), after: cidr("10.9.1.0/24") };

  it("is the state compiled from the new intent: its sources' elements and the network list", () => {
    const { state } = compiled(text("10.0.1.0/24"));
    const after = compiled(text("10.9.1.0/24"));
    const site = after.intent.sites[0];
    if (!site) throw new Error("no site");
    expect(withNetworkPrefix(state, site, change)).toEqual(after.state);
  });

  it("compiles again where an except overlaps the prefix, and leaves another site's state", () => {
    const t = text("10.0.1.0/24", ", except: [10.9.0.0/16]");
    const { intent, state } = compiled(t);
    const site = intent.sites[0];
    if (!site) throw new Error("no site");
    expect(withNetworkPrefix(state, site, change)).toBeUndefined();
    expect(withNetworkPrefix(state, site, { ...change, site: "other" })).toBe(state);
  });
});
