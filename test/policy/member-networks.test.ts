import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Cidr, parseCidr, prefixLookup } from "../../src/net/cidr.js";
import type { MemberIntent, NetworkIntent, TunnelIntent } from "../../src/policy/intent.js";
import { MemberNetworks, type NetworkHolding } from "../../src/policy/member-networks.js";

const cidr = (text: string): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
};

/** Few prefixes, nested and repeated across sites (and within one, which validation reports). */
const POOL = [
  "10.0.0.0/8",
  "10.1.0.0/16",
  "10.1.2.0/24",
  "10.1.3.0/24",
  "10.2.0.0/16",
  "10.1.2.8/29",
  "2001:db8::/32",
  "2001:db8:1::/48",
].map(cidr);
const PROBES = ["10.1.2.9", "10.1.3.1", "10.2.0.1", "10.9.9.9", "192.0.2.1", "2001:db8:1::1"].map(
  cidr,
);
const SITES = ["a", "b", "c", "d", "e"];

describe("MemberNetworks", () => {
  it("finds the first other member holding an address, as asking every member in turn does", () => {
    fc.assert(
      fc.property(
        fc.array(fc.subarray(POOL), { minLength: SITES.length, maxLength: SITES.length }),
        fc.array(fc.constantFrom(...SITES), { maxLength: 8 }),
        fc.constantFrom(...SITES),
        (nets, memberSites, publisher) => {
          const networks = new Map(
            SITES.map((site, i): [string, NetworkIntent[]] => [
              site,
              (nets[i] ?? []).map((c, k) => ({ name: `n${k}`, cidr: c, interface: "lan0" })),
            ]),
          );
          const networksOf = (site: string) => networks.get(site) ?? [];
          const lookups = new Map(
            SITES.map((site) => [site, prefixLookup(networksOf(site), (n) => n.cidr)]),
          );
          const holding: NetworkHolding = (site, address) => lookups.get(site)?.(address);
          const members = memberSites.map((site) => ({ site }) as MemberIntent);
          const index = new MemberNetworks({ members } as unknown as TunnelIntent, networksOf);
          for (const probe of PROBES) {
            const expected = members
              .filter((m) => m.site !== publisher)
              .map((member) => ({ member, network: holding(member.site, probe) }))
              .find((found) => found.network !== undefined);
            expect(index.first(publisher, probe, holding)).toEqual(expected);
          }
        },
      ),
    );
  });
});
