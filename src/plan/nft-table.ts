import type { NftSet } from "../compile/desired.js";
import { bits, type Family, parseAddress } from "../net/cidr.js";
import { autoMerges, nftFingerprint } from "../render/nftables.js";

/**
 * netpol's nftables table as the diff compares it, in two parts that change at different rates.
 *
 * - The skeleton: the kernel's listing without set elements and with counters at zero — set
 *   declarations, chains and rules, as nft prints them. nft's rule grammar is not parsed: the
 *   skeleton is compared as text with the one recorded after the last apply, so a rule added
 *   by hand shows, while the packets a fail-closed guard counted do not.
 * - The elements: each set's, in a canonical form (prefixes and ranges as numbers, an auto-merge
 *   set as the union it holds), compared with the policy's. They are what a one-line change of a
 *   large policy touches, and comparing them needs no listing taken after the write.
 */
export interface NftTable {
  /** The hash in the table's comment: the rendered declarations and chains, without elements. */
  readonly fingerprint: string | undefined;
  readonly skeleton: string;
  /** Each set's elements in canonical form, by set name; a set with none is absent. */
  readonly elements: ReadonlyMap<string, string>;
  /**
   * The kernel's own listing, when the table was read from the kernel: what a rollback loads
   * back. Absent for a table an apply just loaded (known from what it loaded).
   */
  readonly listing?: string;
}

/** A range of addresses as numbers: the one form a prefix, an address and a range share. */
interface Range {
  readonly family: Family;
  readonly first: bigint;
  readonly last: bigint;
}

function parseRange(atom: string): Range | undefined {
  const [from = "", to] = atom.split("-");
  const [addr = "", len] = from.split("/");
  const start = parseAddress(addr);
  if (!start.ok) return undefined;
  const { family, address } = start.value;
  if (to !== undefined) {
    const end = parseAddress(to);
    if (!end.ok || end.value.family !== family || len !== undefined) return undefined;
    return { family, first: address, last: end.value.address };
  }
  const host = BigInt(bits(family) - (len === undefined ? bits(family) : Number(len)));
  const size = 1n << host;
  const first = (address >> host) << host;
  return { family, first, last: first + size - 1n };
}

const formatRange = (r: Range) => `${r.family}:${r.first.toString(16)}-${r.last.toString(16)}`;

/** One atom of an element: an address, prefix or range as its numbers; anything else as written. */
function canonicalAtom(atom: string): string {
  // Ports, protocols, quoted names and verdicts have neither a dot nor a colon.
  if (atom.startsWith('"') || !/[.:]/.test(atom)) return atom;
  const range = parseRange(atom);
  return range ? formatRange(range) : atom;
}

/** `key : value`, each a concatenation `a . b`, atom by atom. */
const canonicalElement = (element: string) =>
  element
    .split(" : ")
    .map((side) => side.split(" . ").map(canonicalAtom).join(" . "))
    .join(" : ");

/** The addresses an auto-merge set holds, as the sorted union of its elements' ranges. */
function mergedRanges(elements: readonly string[]): string[] {
  const ranges = elements
    .map((e) => parseRange(e))
    .filter((r): r is Range => r !== undefined)
    .sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: Range[] = [];
  for (const r of ranges) {
    const top = merged.at(-1);
    if (top && top.family === r.family && r.first <= top.last + 1n) {
      if (r.last > top.last) merged[merged.length - 1] = { ...top, last: r.last };
    } else merged.push(r);
  }
  // An element that is no address at all stays, so a set holding one never compares equal.
  const odd = elements.filter((e) => parseRange(e) === undefined);
  return [...merged.map(formatRange), ...odd];
}

/** A set's elements in canonical form: one string, equal for sets holding the same elements. */
export function canonicalElements(elements: readonly string[], merge: boolean): string {
  return (merge ? mergedRanges(elements) : elements.map(canonicalElement).sort()).join("\n");
}

/** The policy's sets' elements in canonical form, by set name. */
export function desiredElements(sets: readonly NftSet[]): Map<string, string> {
  return new Map(sets.map((s) => [s.name, canonicalElements(s.elements, autoMerges(s))]));
}

/** True when the table holds exactly the sets' elements. */
export function sameElements(sets: readonly NftSet[], table: NftTable): boolean {
  const wanted = desiredElements(sets);
  if ([...table.elements.keys()].some((name) => !wanted.has(name))) return false;
  return [...wanted].every(([name, elements]) => table.elements.get(name) === elements);
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
  const elements = new Map<string, string>();
  for (const [name, s] of raw) {
    const list = s.text
      .join(" ")
      .replace(/\}\s*$/, "")
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
    if (list.length > 0) elements.set(name, canonicalElements(list, s.merge));
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
