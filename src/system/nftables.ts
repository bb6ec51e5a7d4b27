import { NFT_TABLE } from "../compile/desired.js";
import { NetpolError } from "../errors.js";
import type { Runner } from "./runner.js";

export interface NftLive {
  /** `nft list table` output without handles, or undefined when netpol's table is absent. */
  readonly listing: string | undefined;
}

/**
 * One `nft list table`: every nft process dumps the whole ruleset into its cache first, which
 * at thousands of rules costs more than the listing itself, so absence is read from the error
 * rather than from a `list tables` beforehand.
 */
export async function readNft(runner: Runner): Promise<NftLive> {
  try {
    const table = await runner.run("nft", ["list", "table", "inet", NFT_TABLE], {
      step: "reading nftables",
    });
    return { listing: table.stdout };
  } catch (err) {
    if (err instanceof NetpolError && /No such file or directory/.test(err.message))
      return { listing: undefined };
    throw err;
  }
}

/** One `nft -f` transaction: the file replaces netpol's table whole, or fails and changes nothing. */
export async function loadNft(runner: Runner, file: string, step: string): Promise<void> {
  await runner.run("nft", ["-f", "-"], { input: file, step });
}
