import { createHash } from "node:crypto";
import type { NftChain, NftSet, SiteState } from "../compile/desired.js";
import { NFT_TABLE } from "../compile/desired.js";

// Long element lists go several to a line: readable, and one line never grows without bound.
const PER_LINE = 8;

/**
 * Overlapping prefixes (an `except` list may hold 10.0.0.0/8 and 10.1.0.0/16) are merged; nft
 * merges plain interval sets only, and netpol's maps and concatenations never overlap.
 */
export const autoMerges = (s: NftSet) => s.kind === "set" && s.interval && !s.type.includes(".");

/** A set's declaration: its lines before the elements, and the one after them. */
function setDeclaration(s: NftSet): [string[], string] {
  const flags = `${s.interval ? " flags interval;" : ""}${autoMerges(s) ? " auto-merge;" : ""}`;
  return [[`  ${s.kind} ${s.name} {`, `    type ${s.type};${flags}`], "  }"];
}

function setLines(s: NftSet, [head, end]: [string[], string]): string[] {
  const rows: string[] = [];
  for (let i = 0; i < s.elements.length; i += PER_LINE) {
    rows.push(`      ${s.elements.slice(i, i + PER_LINE).join(", ")}`);
  }
  return [...head, "    elements = {", rows.join(",\n"), "    }", end];
}

function chainLines(c: NftChain): string[] {
  return [
    `  chain ${c.name} {`,
    ...(c.base
      ? [`    type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority}; policy accept;`]
      : []),
    ...c.rules.map((rule) => `    ${rule}`),
    "  }",
  ];
}

/**
 * A file for `nft -f` that replaces netpol's table in one transaction: declaring the table
 * first makes the delete valid whether or not it exists. No other table is named, so no
 * other table is touched. With no chains, the file just removes netpol's table.
 *
 * The table's comment carries a hash of its set declarations and chains (not the elements, which
 * are compared one by one: src/plan/nft-table.ts), so a later read can tell whether the table
 * in the kernel has these rules without parsing nft's rule grammar.
 */
export function renderNftables(state: Pick<SiteState, "site" | "nftSets" | "nftChains">): string {
  const lines = [
    `# netpol: table inet ${NFT_TABLE} for site ${state.site}`,
    `table inet ${NFT_TABLE} {}`,
    `delete table inet ${NFT_TABLE}`,
  ];
  if (state.nftChains.length > 0) {
    const declarations = state.nftSets.map(setDeclaration);
    const chains = state.nftChains.map(chainLines);
    const sets = state.nftSets.map((s, i) => setLines(s, declarations[i] ?? [[], ""]));
    const body = [...sets, ...chains].flatMap((b, i) => [...(i > 0 ? [""] : []), ...b]);
    // The hash leaves the elements out: declarations and chains only.
    const hashed = [...declarations.flatMap((d) => d.flat()), ...chains.flat()].join("\n");
    const hash = createHash("sha256").update(hashed).digest("hex").slice(0, 16);
    lines.push(`table inet ${NFT_TABLE} {`, `  comment "netpol ${hash}"`, ...body, "}");
  }
  return `${lines.join("\n")}\n`;
}

/** The hash in a rendered file or in `nft list table` output; undefined if there is none. */
export function nftFingerprint(text: string | undefined): string | undefined {
  return text === undefined ? undefined : /comment "netpol ([0-9a-f]{16})"/.exec(text)?.[1];
}
