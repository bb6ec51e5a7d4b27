import { createHash } from "node:crypto";
import type { NftChain } from "../compile/desired.js";
import { NFT_TABLE } from "../compile/desired.js";

function chainLines(chains: readonly NftChain[]): string[] {
  return chains.flatMap((c, i) => [
    ...(i > 0 ? [""] : []),
    `  chain ${c.name} {`,
    `    type ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`,
    ...c.rules.map((rule) => `    ${rule}`),
    "  }",
  ]);
}

/**
 * A file for `nft -f` that replaces netpol's table in one transaction: declaring the table
 * first makes the delete valid whether or not it exists. No other table is named, so no
 * other table is touched. With no chains, the file just removes netpol's table.
 *
 * The table's comment carries a hash of its chains, so a later read can tell whether the
 * table in the kernel is this one without parsing nft's own formatting.
 */
export function renderNftables(chains: readonly NftChain[], header: string): string {
  const lines = [`# ${header}`, `table inet ${NFT_TABLE} {}`, `delete table inet ${NFT_TABLE}`];
  if (chains.length > 0) {
    const body = chainLines(chains);
    const hash = createHash("sha256").update(body.join("\n")).digest("hex").slice(0, 16);
    lines.push(`table inet ${NFT_TABLE} {`, `  comment "netpol ${hash}"`, ...body, "}");
  }
  return `${lines.join("\n")}\n`;
}

/** The hash in a rendered file or in `nft list table` output; undefined if there is none. */
export function nftFingerprint(text: string | undefined): string | undefined {
  return text === undefined ? undefined : /comment "netpol ([0-9a-f]{16})"/.exec(text)?.[1];
}
