import type { NftSet } from "../compile/desired.js";
import { nftFingerprint } from "../render/nftables.js";
import { holds, type NftElements } from "./nft-elements.js";

/**
 * netpol's nftables table as the diff compares it, in two parts that change at different rates.
 *
 * - The skeleton: the kernel's listing without set elements and with counters at zero — set
 *   declarations, chains and rules, as nft prints them. nft's rule grammar is not parsed: the
 *   skeleton is compared as text with the one recorded after the last apply, so a rule added
 *   by hand shows, while the packets a fail-closed guard counted do not.
 * - The elements: each set's, compared with the policy's as written and, where nft printed them
 *   otherwise (a host prefix bare, an auto-merge set merged), in a canonical form: prefixes and
 *   ranges as numbers, an auto-merge set as the union it holds. They are what a one-line change
 *   of a large policy touches, and comparing them needs no listing taken after the write.
 */
export interface NftTable {
  /** The hash in the table's comment: the rendered declarations and chains, without elements. */
  readonly fingerprint: string | undefined;
  readonly skeleton: string;
  /** Each set's elements, by set name; a set with none is absent. */
  readonly elements: ReadonlyMap<string, NftElements>;
  /**
   * The kernel's own listing, when the table was read from the kernel: what a rollback loads
   * back. Absent for a table an apply just loaded (known from what it loaded).
   */
  readonly listing?: string;
}

/** True when the table holds exactly the sets' elements. */
export function sameElements(sets: readonly NftSet[], table: NftTable): boolean {
  const wanted = new Set(sets.map((s) => s.name));
  if ([...table.elements.keys()].some((name) => !wanted.has(name))) return false;
  return sets.every((s) => {
    const live = table.elements.get(s.name);
    return live ? holds(s, live) : s.elements.length === 0;
  });
}

const COUNTER = /counter packets \d+ bytes \d+/g;

/**
 * `nft list table` (or `nft -t list table`) output → the table as compared. Set blocks open with
 * `set NAME {` or `map NAME {`; their elements run from `elements = {` to the line that ends
 * with `}`, one or several elements to a line.
 */
export function parseNftListing(listing: string, keepListing = true): NftTable {
  const skeleton: string[] = [];
  const raw = new Map<string, { merge: boolean; text: string[] }>();
  let set: { merge: boolean; text: string[] } | undefined;
  let inElements = false;
  for (const line of listing.split("\n")) {
    const trimmed = line.trim();
    if (inElements) {
      set?.text.push(trimmed);
      inElements = !trimmed.endsWith("}");
      continue;
    }
    const opens = /^(?:set|map) (\S+) \{$/.exec(trimmed);
    if (opens) {
      set = { merge: false, text: [] };
      raw.set(opens[1] ?? "", set);
    } else if (trimmed === "}") {
      set = undefined;
    } else if (set && /\bauto-merge\b/.test(trimmed)) {
      set.merge = true;
    }
    if (set && trimmed.startsWith("elements = {")) {
      set.text.push(trimmed.slice("elements = {".length));
      inElements = !trimmed.endsWith("}");
      continue;
    }
    skeleton.push(line.replace(COUNTER, "counter"));
  }
  const elements = new Map<string, NftElements>();
  for (const [name, s] of raw) {
    const list = s.text
      .join(" ")
      .replace(/\}\s*$/, "")
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
    if (list.length > 0) elements.set(name, { list, merge: s.merge });
  }
  const text = skeleton.join("\n");
  return {
    fingerprint: nftFingerprint(text),
    skeleton: text,
    elements,
    ...(keepListing ? { listing } : {}),
  };
}

/** The listing a rollback loads back: a snapshot is taken of the table as read from the kernel. */
export function kernelListing(table: NftTable): string {
  if (table.listing === undefined) throw new Error("unreachable: a snapshot of a table not read");
  return table.listing;
}
