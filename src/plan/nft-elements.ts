import type { NftSet } from "../compile/desired.js";
import { formatAddress, parseAddress } from "../net/cidr.js";
import { autoMerges } from "../render/nftables.js";

/**
 * A set's elements as nft lists them, compared with the ones netpol writes. nft prints most
 * as written; a host prefix it prints bare, IPv6 shortened, and an auto-merge set as the union
 * it holds (adjacent prefixes become one range). Those few are compared in a canonical form:
 * prefixes and ranges as numbers, an auto-merge set as its union.
 */
export interface NftElements {
  readonly list: readonly string[];
  /** An auto-merge set: it holds the union of its elements, however they were written. */
  readonly merge: boolean;
}

/**
 * A range of addresses as numbers: the one form a prefix, an address and a range share. IPv4
 * is plain arithmetic (a set of 10,000 prefixes is read on every plan); IPv6 needs BigInt.
 */
type Range =
  | { readonly family: 4; readonly first: number; readonly last: number }
  | { readonly family: 6; readonly first: bigint; readonly last: bigint };

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function v4(text: string): number | undefined {
  const m = V4.exec(text);
  if (!m) return undefined;
  const octets = [m[1], m[2], m[3], m[4]].map(Number);
  return octets.some((o) => o > 255) ? undefined : octets.reduce((a, o) => a * 256 + o, 0);
}

function v6(text: string): bigint | undefined {
  const parsed = parseAddress(text);
  return parsed.ok && parsed.value.family === 6 ? parsed.value.address : undefined;
}

function parseRange(atom: string): Range | undefined {
  const [from = "", to] = atom.split("-");
  const [addr = "", len] = from.split("/");
  if (to !== undefined && len !== undefined) return undefined;
  const start4 = v4(addr);
  if (start4 !== undefined) {
    if (to !== undefined) {
      const last = v4(to);
      return last === undefined ? undefined : { family: 4, first: start4, last };
    }
    const size = 2 ** (32 - (len === undefined ? 32 : Number(len)));
    const first = start4 - (start4 % size);
    return { family: 4, first, last: first + size - 1 };
  }
  const start6 = v6(addr);
  if (start6 === undefined) return undefined;
  if (to !== undefined) {
    const last = v6(to);
    return last === undefined ? undefined : { family: 6, first: start6, last };
  }
  const host = BigInt(128 - (len === undefined ? 128 : Number(len)));
  const first = (start6 >> host) << host;
  return { family: 6, first, last: first + (1n << host) - 1n };
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

/** Sorted, and merged where they overlap or touch: the addresses the ranges hold. */
function union<N extends number | bigint>(
  ranges: { first: N; last: N }[],
  next: (n: N) => N,
): { first: N; last: N }[] {
  ranges.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: { first: N; last: N }[] = [];
  for (const r of ranges) {
    const top = merged.at(-1);
    if (top && r.first <= next(top.last)) {
      if (r.last > top.last) top.last = r.last;
    } else merged.push({ ...r });
  }
  return merged;
}

type Union = ReturnType<typeof unionOfNew>;
/**
 * Each element list's union, made once: element lists are never mutated, and the list a plan
 * reads from the table netpol loaded last is the one the plan before it wrote (loadedElements),
 * so a resident's one-line change at 10,000 prefixes reads only the new list's.
 */
const unions = new WeakMap<readonly string[], Union>();

/** The union of an auto-merge set's elements, per family, and those that are no address. */
function unionOf(elements: readonly string[]): Union {
  let u = unions.get(elements);
  if (!u) {
    u = unionOfNew(elements);
    unions.set(elements, u);
  }
  return u;
}

function unionOfNew(elements: readonly string[]) {
  const four: { first: number; last: number }[] = [];
  const six: { first: bigint; last: bigint }[] = [];
  const odd: string[] = [];
  for (const e of elements) {
    const r = parseRange(e);
    if (r?.family === 4) four.push({ first: r.first, last: r.last });
    else if (r?.family === 6) six.push({ first: r.first, last: r.last });
    else odd.push(e);
  }
  return { four: union(four, (n) => n + 1), six: union(six, (n) => n + 1n), odd };
}

const span = (r: { first: number | bigint; last: number | bigint }) =>
  `${r.first.toString(16)}-${r.last.toString(16)}`;

/** The addresses an auto-merge set holds, as the sorted union of its elements' ranges. */
function mergedRanges(elements: readonly string[]): string[] {
  const { four, six, odd } = unionOf(elements);
  // An element that is no address at all stays, so a set holding one never compares equal.
  return [
    ...four.map((r) => `4:${span(r)}`),
    ...six.map((r) => `6:${span(r)}`),
    ...[...odd].sort(),
  ];
}

/** A set's elements in canonical form: one string, equal for sets holding the same elements. */
function canonicalElements({ list, merge }: NftElements): string {
  return (merge ? mergedRanges(list) : list.map(canonicalElement).sort()).join("\n");
}

/** The elements of the sets as loaded: what the kernel holds once `nft -f` acked them. */
export function loadedElements(sets: readonly NftSet[]): Map<string, NftElements> {
  return new Map(sets.map((s) => [s.name, { list: s.elements, merge: autoMerges(s) }]));
}

/**
 * True when the set holds the elements written. nft prints most elements as netpol writes
 * them, so only those it printed otherwise (a host prefix bare, ranges an auto-merge set
 * merged) are compared in canonical form: in a set of 10,000, a one-line change costs two.
 */
export function holds(set: NftSet, live: NftElements): boolean {
  if (live.list === set.elements) return true;
  const written = new Set(set.elements);
  const listed = new Set(live.list);
  const extra = live.list.filter((e) => !written.has(e));
  const missing = set.elements.filter((e) => !listed.has(e));
  if (extra.length === 0 && missing.length === 0) return true;
  const merge = autoMerges(set);
  // A merged range stands for elements nft printed as written too: the whole union counts.
  if (merge || live.merge)
    return canonicalElements(live) === canonicalElements({ list: set.elements, merge });
  // Each element is one value, and distinct values have distinct canonical forms.
  return (
    canonicalElements({ list: extra, merge: false }) ===
    canonicalElements({ list: missing, merge: false })
  );
}

/** A range of the union as nft takes it in a command: a prefix where it is one, else `first-last`. */
function rangeText(family: 4 | 6, r: { first: number | bigint; last: number | bigint }): string {
  const first = BigInt(r.first);
  const size = BigInt(r.last) - first + 1n;
  const text = (n: bigint) => formatAddress({ family, address: n });
  if ((size & (size - 1n)) === 0n && first % size === 0n) {
    const prefix = (family === 4 ? 32 : 128) - (size.toString(2).length - 1);
    return `${text(first)}/${prefix}`;
  }
  return `${text(first)}-${text(BigInt(r.last))}`;
}

/**
 * The element commands that turn what the kernel holds of a set (`live`) into `set`'s elements:
 * what to take out (keys alone for a map) and what to add. An auto-merge set holds the union of
 * its elements as ranges, and nft (1.0.6) cannot cut a piece out of a merged range: each range
 * of the union that is not in the new union is taken out whole, and each new one added (nft
 * merges it with the ranges kept, as a whole load would). Undefined when the set holds
 * something that is no address beside them (then the table is loaded whole).
 */
export function elementEdits(
  set: NftSet,
  live: NftElements,
): { readonly remove: readonly string[]; readonly add: readonly string[] } | undefined {
  if (autoMerges(set) || live.merge) {
    const held = unionOf(live.list);
    const wanted = unionOf(set.elements);
    if (held.odd.length > 0 || wanted.odd.length > 0) return undefined;
    const remove: string[] = [];
    const add: string[] = [];
    const edit = <N extends number | bigint>(
      family: 4 | 6,
      was: readonly { first: N; last: N }[],
      now: readonly { first: N; last: N }[],
    ) => {
      const kept = new Set(now.map(span));
      const had = new Set(was.map(span));
      for (const r of was) if (!kept.has(span(r))) remove.push(rangeText(family, r));
      for (const r of now) if (!had.has(span(r))) add.push(rangeText(family, r));
    };
    edit(4, held.four, wanted.four);
    edit(6, held.six, wanted.six);
    return { remove, add };
  }
  const { added, removed } = elementChanges(set, live);
  const key = (e: string) => (set.kind === "map" ? (e.split(" : ")[0] ?? e) : e);
  return { remove: removed.map(key), add: added };
}

/** Whether one element's addresses all lie in a union of ranges (an element that is none: listed). */
function coveredBy(element: string, u: ReturnType<typeof unionOf>): boolean {
  const r = parseRange(element);
  if (r === undefined) return u.odd.includes(element);
  const within = <N extends number | bigint>(
    ranges: { first: N; last: N }[],
    x: { first: N; last: N },
  ) => ranges.some((have) => have.first <= x.first && x.last <= have.last);
  return r.family === 4 ? within(u.four, r) : within(u.six, r);
}

/**
 * Which elements an apply adds to a set and which it takes out, as written (the policy's) and as
 * nft lists them (the kernel's), for the plan to name: a port, a prefix. Those nft only printed
 * otherwise are neither; in an auto-merge set, an element counts as held when the other side's
 * union covers it.
 */
export function elementChanges(
  set: NftSet,
  live: NftElements | undefined,
): { readonly added: readonly string[]; readonly removed: readonly string[] } {
  const listedList = live?.list ?? [];
  const written = new Set(set.elements);
  const listed = new Set(listedList);
  const extra = listedList.filter((e) => !written.has(e));
  const missing = set.elements.filter((e) => !listed.has(e));
  if (extra.length === 0 && missing.length === 0) return { added: [], removed: [] };
  // A merged range stands for elements written otherwise: each side is read as the union it holds.
  if (autoMerges(set) || live?.merge) {
    const held = unionOf(listedList);
    const wanted = unionOf(set.elements);
    return {
      added: missing.filter((e) => !coveredBy(e, held)),
      removed: extra.filter((e) => !coveredBy(e, wanted)),
    };
  }
  if (extra.length === 0 || missing.length === 0) return { added: missing, removed: extra };
  const extraForms = new Set(extra.map(canonicalElement));
  const missingForms = new Set(missing.map(canonicalElement));
  return {
    added: missing.filter((e) => !extraForms.has(canonicalElement(e))),
    removed: extra.filter((e) => !missingForms.has(canonicalElement(e))),
  };
}
