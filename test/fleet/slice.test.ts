import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileSite } from "../../src/compile/compile.js";
import { preparePolicy } from "../../src/fleet/prepare.js";
import { sameState, slicer, stateKey } from "../../src/fleet/slice.js";
import type { Intent } from "../../src/policy/intent.js";
import { parsePolicy } from "../../src/policy/load.js";
import { readYaml } from "../../src/policy/read-yaml.js";
import { hubPolicy } from "../support/large-policy.js";

// biome-ignore lint/suspicious/noExplicitAny: the policy as read
type Raw = Record<string, any>;

/**
 * The part as first cut: each site looked for through the whole policy (quadratic in a fleet's
 * size, obviously right). slicer's indexes must cut exactly these parts.
 */
function partByScan(doc: Raw, intent: Intent, site: string): string {
  const keep = new Set([site]);
  const tunnels = ((doc.tunnels ?? []) as Raw[]).flatMap((t): Raw[] => {
    const members = (t.members ?? []) as Raw[];
    if (!members.some((m) => m.site === site)) return [];
    const spoke = t.hub !== undefined && t.hub !== site;
    const kept = spoke
      ? members.filter((m) => m.site === site || m.site === t.hub || (m.advertise ?? []).length > 0)
      : members;
    for (const m of kept) keep.add(String(m.site));
    return [{ ...t, members: kept }];
  });
  const ofSite = intent.services.filter((s) => s.publishOn === site || s.target.site === site);
  for (const s of ofSite) keep.add(s.publishOn).add(s.target.site);
  const names = new Set(ofSite.map((s) => s.name));
  const services = ((doc.services ?? []) as Raw[]).filter((s) => names.has(String(s.name)));
  const part: Raw = {
    version: doc.version,
    sites: Object.fromEntries(Object.entries(doc.sites as Raw).filter(([n]) => keep.has(n))),
  };
  if (doc.settings !== undefined) part.settings = doc.settings;
  if (tunnels.length > 0) part.tunnels = tunnels;
  if (services.length > 0) part.services = services;
  return JSON.stringify(part);
}

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

  it("cuts, from indexes made once, exactly the parts a scan of the whole policy cuts", () => {
    // Half the spokes advertise their LAN (kept by every spoke), half do not (kept by none).
    let odd = false;
    const mixed = hubPolicy(40).replaceAll(", advertise: [lan]", () => {
      odd = !odd;
      return odd ? "" : ", advertise: [lan]";
    });
    const examples = ["a-vlan-via-vpn", "b-publish-via-vps", "c-combined"].map((name) =>
      readFileSync(new URL(`../../policies/${name}.yaml`, import.meta.url), "utf8"),
    );
    for (const text of [mixed, hubPolicy(30), ...examples]) {
      const { intent } = parsePolicy(text, "fleet.yaml");
      const read = readYaml(text, "fleet.yaml");
      if (!read.ok) throw new Error("unreadable");
      const doc = read.data as Raw;
      const cut = slicer(doc, intent);
      for (const site of intent.sites)
        expect(cut(site.name), site.name).toBe(partByScan(doc, intent, site.name));
    }
  });

  it("falls back to the whole policy for a site whose part would compile differently", () => {
    const text = hubPolicy(3);
    const { intent } = parsePolicy(text, "hub.yaml");
    expect(sameState(text, "s1", stateKey(compileSite(intent, "s2")))).toBe(false);
  });
});
