import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { guardRetired, retiredNetworks } from "../../src/compile/retired.js";
import { parsePolicy } from "../../src/policy/load.js";
import { WITH_GUEST, WITHOUT_GUEST } from "../support/retired.js";

const compiled = (text: string) => compileSite(parsePolicy(text, "policy.yaml").intent, "home");

describe("retired networks (issue 18, item 7)", () => {
  it("says which networks fail closed", () => {
    expect(compiled(WITH_GUEST).networks).toEqual([
      { name: "lan", cidr: "192.168.1.0/24", device: "lan0", failClosed: false },
      { name: "guest", cidr: "10.66.0.0/24", device: "guest0", failClosed: true },
    ]);
  });

  it("retires a fail-closed network that left while its port exists, and no other", () => {
    const before = compiled(WITH_GUEST).networks ?? [];
    const after = compiled(WITHOUT_GUEST);
    const ports = new Set(["lan0", "guest0"]);
    const guest = before.filter((n) => n.name === "guest");
    expect(retiredNetworks(before, after, ports)).toEqual(guest);
    // Its port gone: nothing to guard.
    expect(retiredNetworks(before, after, new Set(["lan0"]))).toEqual([]);
    // Back in the policy: the operator's choice again.
    expect(retiredNetworks(before, compiled(WITH_GUEST), ports)).toEqual([]);
    // A network that did not fail closed (lan) is never guarded.
    const bare = { ...after, networks: [] };
    expect(retiredNetworks(before, bare, ports)).toEqual(guest);
    // netpol no longer forwards for the site (nothing routed): it puts forwarding back.
    expect(retiredNetworks(before, { ...bare, sysctls: [] }, ports)).toEqual([]);
  });

  it("guards at the tail of the forward filter, creating it where the policy has none", () => {
    const guest = (compiled(WITH_GUEST).networks ?? []).filter((n) => n.name === "guest");
    const rule = 'iifname . ip saddr @retired4 counter drop comment "retired networks"';
    const forwardOf = (state: ReturnType<typeof compiled>) =>
      state.nftChains.find((c) => c.name === "filter_forward");
    expect(forwardOf(compiled(WITHOUT_GUEST))).toBeUndefined();
    expect(forwardOf(guardRetired(compiled(WITHOUT_GUEST), guest))).toEqual({
      name: "filter_forward",
      base: { type: "filter", hook: "forward", priority: "filter" },
      rules: [rule],
    });
    const busy = guardRetired(compiled(WITH_GUEST), guest);
    const forward = forwardOf(busy);
    expect(forward?.rules.at(-1)).toBe(rule);
    expect(forward?.rules.length).toBeGreaterThan(1);
    // The networks are elements of a set the rule matches: one retiring changes no rule.
    expect(busy.nftSets.at(-1)).toEqual({
      name: "retired4",
      kind: "set",
      type: "ifname . ipv4_addr",
      interval: true,
      elements: ['"guest0" . 10.66.0.0/24'],
    });
    expect(guardRetired(compiled(WITHOUT_GUEST), [])).toEqual(compiled(WITHOUT_GUEST));
  });
});
