import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { preparePolicy } from "../../src/fleet/prepare.js";
import { sameState, stateKey } from "../../src/fleet/slice.js";
import { parsePolicy } from "../../src/policy/load.js";
import { hubPolicy } from "../support/large-policy.js";

describe("each site's part of a fleet policy", () => {
  it("compiles, for every site, to exactly the state the whole policy gives it", () => {
    const text = hubPolicy(20);
    const { intent } = parsePolicy(text, "hub.yaml");
    const prepared = preparePolicy(text, "hub.yaml");
    expect(prepared.whole).toEqual([]);
    for (const site of intent.sites) {
      const part = prepared.sites.get(site.name);
      expect(part, site.name).toBeDefined();
      expect(
        sameState(part?.text ?? "", site.name, stateKey(compileSite(intent, site.name))),
        site.name,
      ).toBe(true);
    }
  });

  it("gives a spoke its hub, not the whole fleet; and the spokes whose networks it routes", () => {
    // Spokes that advertise nothing: each peers with the hub alone.
    const text = hubPolicy(50).replaceAll(", advertise: [lan]", "");
    const sitesOf = (t: string) => Object.keys((JSON.parse(t) as { sites: object }).sites).sort();
    const prepared = preparePolicy(text, "hub.yaml");
    expect(sitesOf(prepared.sites.get("s7")?.text ?? "")).toEqual(["s7", "vps"]);
    expect(sitesOf(prepared.sites.get("vps")?.text ?? "")).toHaveLength(51);
    // Spokes that advertise their LAN: each routes the others' through the hub, so keeps them.
    const advertised = preparePolicy(hubPolicy(5), "hub.yaml").sites.get("s1")?.text ?? "";
    expect(sitesOf(advertised)).toEqual(["s0", "s1", "s2", "s3", "s4", "vps"]);
  });

  it("falls back to the whole policy for a site whose part would compile differently", () => {
    const text = hubPolicy(3);
    const { intent } = parsePolicy(text, "hub.yaml");
    expect(sameState(text, "s1", stateKey(compileSite(intent, "s2")))).toBe(false);
  });
});
