import type { NftChain } from "../compile/desired.js";
import { NFT_TABLE } from "../compile/desired.js";

/**
 * A file for `nft -f` that replaces netpol's table in one transaction: declaring the table
 * first makes the delete valid whether or not it exists. No other table is named, so no
 * other table is touched. With no chains, the file just removes netpol's table.
 */
export function renderNftables(chains: readonly NftChain[], header: string): string {
  const lines = [`# ${header}`, `table inet ${NFT_TABLE} {}`, `delete table inet ${NFT_TABLE}`];
  if (chains.length > 0) {
    lines.push(`table inet ${NFT_TABLE} {`);
    chains.forEach((c, i) => {
      if (i > 0) lines.push("");
      lines.push(`  chain ${c.name} {`);
      lines.push(`    type ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`);
      for (const rule of c.rules) lines.push(`    ${rule}`);
      lines.push("  }");
    });
    lines.push("}");
  }
  return `${lines.join("\n")}\n`;
}
