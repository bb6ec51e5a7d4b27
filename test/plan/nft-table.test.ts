import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseNftListing, sameElements } from "../../src/plan/nft-table.js";
import { nftFingerprint, renderNftables } from "../../src/render/nftables.js";
import { CHAINS, SETS } from "./nft-listings/sets.js";

const listing = (file: string) =>
  readFileSync(path.join(import.meta.dirname, "nft-listings", file), "utf8");
const full = listing("full.txt");
const table = parseNftListing(full);

describe("netpol's table as read from nft's listing", () => {
  it("holds the sets' elements as nft rewrote them (merged, host prefixes bare, IPv6 shortened)", () => {
    expect(sameElements(SETS, table)).toBe(true);
  });

  it("carries the rendered file's fingerprint", () => {
    const rendered = renderNftables({ site: "home", nftSets: SETS, nftChains: CHAINS });
    expect(table.fingerprint).toBe(nftFingerprint(rendered));
  });

  it("has the same skeleton as `nft -t`, which an apply lists after its write", () => {
    expect(parseNftListing(listing("terse.txt")).skeleton).toBe(table.skeleton);
  });

  it("does not count the packets a guard dropped as an edit", () => {
    const counted = full.replace("counter packets 0 bytes 0", "counter packets 17 bytes 1428");
    expect(parseNftListing(counted).skeleton).toBe(table.skeleton);
  });

  it("tells a rule added by hand by its skeleton", () => {
    const edited = full.replace(
      "\t\tip saddr vmap @egress_from4\n",
      '\t\tip saddr vmap @egress_from4\n\t\tiifname "lan" accept\n',
    );
    expect(parseNftListing(edited).skeleton).not.toBe(table.skeleton);
  });

  const withElement = (set: string, element: string) =>
    SETS.map((s) => (s.name === set ? { ...s, elements: [...s.elements, element] } : s));
  const without = (set: string, element: string) =>
    SETS.map((s) =>
      s.name === set ? { ...s, elements: s.elements.filter((e) => e !== element) } : s,
    );

  it.each([
    [
      "an address outside an auto-merge set's union",
      withElement("egress_1_except4", "10.0.4.0/24"),
    ],
    ["one more map entry", withElement("egress_from4", "192.168.8.0/24 : jump egress_1")],
    ["a prefix gone from an auto-merge set", without("egress_1_except4", "10.0.2.0/24")],
    ["a host prefix gone", without("egress_from4", "192.168.7.5/32 : jump egress_1")],
    [
      "a map value changed",
      SETS.map((s) =>
        s.name === "published6"
          ? {
              ...s,
              elements: ["tcp . 8443 : 2001:db8::11 . 443", "udp . 5353 : 2001:db8::53 . 53"],
            }
          : s,
      ),
    ],
    ["a set the table holds and the policy does not", SETS.filter((s) => s.name !== "proxied")],
  ])("tells elements that differ: %s", (_, sets) => {
    expect(sameElements(sets, table)).toBe(false);
  });

  it("takes an element inside an auto-merge set's union as no change to what it holds", () => {
    expect(sameElements(withElement("egress_1_except4", "10.0.1.128/25"), table)).toBe(true);
  });
});
