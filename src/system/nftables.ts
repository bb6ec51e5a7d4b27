import { NFT_TABLE } from "../compile/desired.js";
import { NetpolError } from "../errors.js";
import { type NftTable, parseNftListing } from "../plan/nft-table.js";
import type { Runner } from "./runner.js";

const ABSENT = /No such file or directory/;

/**
 * One `nft list table`: every nft process dumps the whole ruleset into its cache first, which
 * at thousands of rules costs more than the listing itself, so absence is read from the error
 * rather than from a `list tables` beforehand.
 */
async function listTable(runner: Runner, flags: readonly string[]): Promise<string | undefined> {
  try {
    const table = await runner.run("nft", [...flags, "list", "table", "inet", NFT_TABLE], {
      step: "reading nftables",
      spool: true,
    });
    return table.stdout;
  } catch (err) {
    if (err instanceof NetpolError && ABSENT.test(err.message)) return undefined;
    throw err;
  }
}

/** netpol's table, or undefined when it is absent. */
export async function readNft(runner: Runner): Promise<NftTable | undefined> {
  const listing = await listTable(runner, []);
  return listing === undefined ? undefined : parseNftListing(listing);
}

/**
 * The skeleton of netpol's table alone (`nft -t`: no set elements), which at 10,000 elements
 * takes a quarter of a whole listing; undefined when the table is absent.
 */
export async function readNftSkeleton(runner: Runner): Promise<string | undefined> {
  const listing = await listTable(runner, ["-t"]);
  return listing === undefined ? undefined : parseNftListing(listing, false).skeleton;
}

/** One `nft -f` transaction: the file replaces netpol's table whole, or fails and changes nothing. */
export async function loadNft(runner: Runner, file: string, step: string): Promise<void> {
  await runner.run("nft", ["-f", "-"], { input: file, step });
}
