import { NFT_TABLE, type NftSet } from "../compile/desired.js";
import { elementChanges, elementEdits } from "./nft-elements.js";
import type { NftTable } from "./nft-table.js";

/**
 * What a replace of netpol's table changes, line by line, for the plan to show (a port, a
 * prefix, a rule), not only that something differs. Pure.
 */

/** Each set's elements the apply adds (`+`) and takes out (`-`), sets gone included. */
export function elementDetails(sets: readonly NftSet[], table: NftTable | undefined): string[] {
  const lines: string[] = [];
  const wanted = new Set(sets.map((s) => s.name));
  for (const set of sets) {
    const { added, removed } = elementChanges(set, table?.elements.get(set.name));
    for (const e of added) lines.push(`${set.kind} ${set.name}: + ${e}`);
    for (const e of removed) lines.push(`${set.kind} ${set.name}: - ${e}`);
  }
  for (const [name, live] of table?.elements ?? []) {
    if (!wanted.has(name)) for (const e of live.list) lines.push(`set ${name}: - ${e}`);
  }
  return lines;
}

/**
 * An `nft -f` file that makes the sets of netpol's table in force the policy's by element
 * commands alone, in one transaction like a whole load (so no packet sees half of it), for a
 * table whose rules are the policy's: at 10,000 elements nft then reads and sends a few
 * elements, not the table. Undefined where a set is not in the table, or one cannot be edited
 * (the table is loaded whole).
 */
export function elementScript(
  sets: readonly NftSet[],
  table: NftTable | undefined,
): string | undefined {
  if (!table || table.elements.size !== sets.length) return undefined;
  const removes: string[] = [];
  const adds: string[] = [];
  const line = (verb: string, set: NftSet, elements: readonly string[]) =>
    `${verb} element inet ${NFT_TABLE} ${set.name} { ${elements.join(", ")} }`;
  for (const set of sets) {
    const live = table.elements.get(set.name);
    if (!live) return undefined;
    const edits = elementEdits(set, live);
    if (!edits) return undefined;
    // Every removal before any addition: a map's key given a new value is taken out first.
    if (edits.remove.length > 0) removes.push(line("delete", set, edits.remove));
    if (edits.add.length > 0) adds.push(line("add", set, edits.add));
  }
  if (removes.length + adds.length === 0) return undefined;
  return `${[...removes, ...adds].join("\n")}\n`;
}

/** The rules of each chain and the sets declared, from a table as netpol renders it. */
function parts(rendered: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let chain: string[] | undefined;
  for (const line of rendered.split("\n")) {
    const trimmed = line.trim();
    const opens = /^chain (\S+) \{$/.exec(trimmed);
    if (opens) {
      chain = [];
      out.set(`chain ${opens[1]}`, chain);
      continue;
    }
    const declares = /^(set|map) (\S+) \{$/.exec(trimmed);
    if (declares) out.set(`${declares[1]} ${declares[2]}`, []);
    if (!chain) continue;
    if (trimmed === "}") chain = undefined;
    else if (trimmed !== "" && !trimmed.startsWith("type ")) chain.push(trimmed);
  }
  return out;
}

/**
 * The rules and declarations one render of netpol's table has and the other has not, both in
 * netpol's own form (the kernel prints rules otherwise, so the table in force is known by the
 * render of the policy in force, whose fingerprint it carries).
 */
export function ruleDetails(before: string, after: string): string[] {
  const was = parts(before);
  const is = parts(after);
  const lines: string[] = [];
  for (const [name, rules] of is) {
    const had = was.get(name);
    if (!had) {
      lines.push(`+ ${name}`);
      if (name.startsWith("chain ")) for (const r of rules) lines.push(`${name}: + ${r}`);
      continue;
    }
    const old = new Set(had);
    const now = new Set(rules);
    for (const r of had) if (!now.has(r)) lines.push(`${name}: - ${r}`);
    for (const r of rules) if (!old.has(r)) lines.push(`${name}: + ${r}`);
  }
  for (const name of was.keys()) if (!is.has(name)) lines.push(`- ${name}`);
  return lines;
}
