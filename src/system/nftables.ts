import * as z from "zod";
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
async function listTable(
  runner: Runner,
  flags: readonly string[],
  after: readonly string[] = [],
): Promise<string | undefined> {
  try {
    const table = await runner.run(
      "nft",
      [...flags, "list", "table", "inet", NFT_TABLE, ...after],
      {
        step: "reading nftables",
        spool: true,
      },
    );
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
 * The skeleton of netpol's table alone (`nft -t`: no set elements); undefined when the table is
 * absent. An nft run fills its cache once for all its commands, with what any of them needs and
 * the table filter of its `list table`. On nft 1.0.6 `-t list table` alone still fetches every
 * element of the table's sets (0.13 s at 20,000, idle), and `-t list ruleset` alone skips them
 * but fetches every other table's rules (0.5 s beside a kube-proxy's 20,000); in one run, `list
 * ruleset` adds the skip to the table's filter, so nft fetches netpol's table without its
 * elements, in both cases, and prints it twice (bench/nft-skeleton.ts). The first is cut out. A run that fails otherwise than on an absent table (an nft that fetched a foreign table
 * it cannot list) falls back to the table alone.
 */
export async function readNftSkeleton(runner: Runner): Promise<string | undefined> {
  let listing: string | undefined;
  try {
    const twice = await listTable(runner, ["-t"], [";", "list", "ruleset"]);
    listing = twice === undefined ? undefined : tableIn(twice);
  } catch {
    listing = await listTable(runner, ["-t"]);
  }
  return listing === undefined ? undefined : parseNftListing(listing, false).skeleton;
}

/** netpol's table, the first in a listing: from its first line to its closing brace. */
function tableIn(ruleset: string): string | undefined {
  const lines = ruleset.split("\n");
  const start = lines.indexOf(`table inet ${NFT_TABLE} {`);
  const end = lines.indexOf("}", start);
  return start < 0 || end < 0 ? undefined : lines.slice(start, end + 1).join("\n");
}

/** One `nft -f` transaction: the file replaces netpol's table whole, or fails and changes nothing. */
export async function loadNft(runner: Runner, file: string, step: string): Promise<void> {
  await runner.run("nft", ["-f", "-"], { input: file, step });
}

/**
 * A planned change of netpol's table: its element commands where the plan has them (a few
 * elements, not the table), else the table whole. Element commands the kernel refuses (its
 * sets were not as read: an element gone by hand) changed nothing, being one transaction: the
 * table is then loaded whole, as it would have been.
 */
export async function writeNft(
  runner: Runner,
  change: { readonly text: string; readonly elements?: string | undefined },
  step: string,
): Promise<void> {
  if (change.elements !== undefined) {
    try {
      await loadNft(runner, change.elements, step);
      return;
    } catch (err) {
      if (!(err instanceof NetpolError)) throw err;
    }
  }
  await loadNft(runner, change.text, step);
}

/** A base chain of another table that drops, by its policy, what no rule of it accepts. */
export interface ForwardDrop {
  /** `ip filter`, say: the family and the table. */
  readonly table: string;
  readonly chain: string;
}

const chainItem = z.object({
  chain: z.object({
    family: z.string(),
    table: z.string(),
    name: z.string(),
    hook: z.string().optional(),
    policy: z.string().optional(),
  }),
});
const chainsListing = z.object({ nftables: z.array(z.unknown()) });

/**
 * Every chain of another table on the forward hook whose policy is drop: such a chain drops
 * what netpol forwards unless one of its own rules accepts it, and no accept in netpol's table
 * can override it (a packet must pass every base chain on the hook). Docker sets one up
 * (`table ip filter`, chain FORWARD) when it turns forwarding on itself. `nft list chains`
 * lists no rules, so it stays cheap beside a large ruleset.
 */
export async function readForwardDrops(runner: Runner): Promise<ForwardDrop[]> {
  const { stdout } = await runner.run("nft", ["-j", "list", "chains"], {
    step: "reading nftables",
  });
  // A diagnostic only: a listing it cannot read warns of nothing rather than failing status.
  let items: unknown[];
  try {
    items = chainsListing.parse(JSON.parse(stdout)).nftables;
  } catch {
    return [];
  }
  return items.flatMap((item) => {
    const parsed = chainItem.safeParse(item);
    if (!parsed.success) return [];
    const { family, table, name, hook, policy } = parsed.data.chain;
    const ours = family === "inet" && table === NFT_TABLE;
    return hook === "forward" && policy === "drop" && !ours
      ? [{ table: `${family} ${table}`, chain: name }]
      : [];
  });
}
