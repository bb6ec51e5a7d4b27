import { NFT_TABLE } from "../compile/desired.js";
import type { Runner } from "./runner.js";

export interface NftLive {
  /** `nft list table` output without handles, or undefined when netpol's table is absent. */
  readonly listing: string | undefined;
}

export async function readNft(runner: Runner): Promise<NftLive> {
  const { stdout } = await runner.run("nft", ["list", "tables"], { step: "reading nftables" });
  const present = stdout.split("\n").some((l) => l.trim() === `table inet ${NFT_TABLE}`);
  if (!present) return { listing: undefined };
  const table = await runner.run("nft", ["list", "table", "inet", NFT_TABLE], {
    step: "reading nftables",
  });
  return { listing: table.stdout };
}

/** One `nft -f` transaction: the file replaces netpol's table whole, or fails and changes nothing. */
export async function loadNft(runner: Runner, file: string, step: string): Promise<void> {
  await runner.run("nft", ["-f", "-"], { input: file, step });
}
