import { execa } from "execa";

/** Everything netpol could own in a namespace, read back as text for before/after comparisons. */
export async function ownedSnapshot(ns: string): Promise<Record<string, string>> {
  const run = async (args: string[]) =>
    (await execa("ip", ["netns", "exec", ns, ...args], { reject: false })).stdout;
  const links = await run(["ip", "-br", "link"]);
  return {
    routes:
      (await run(["ip", "route", "show", "table", "all", "proto", "77"])) +
      (await run(["ip", "-6", "route", "show", "table", "all", "proto", "77"])),
    rules: await run(["ip", "rule", "show"]),
    addresses: await run(["ip", "-br", "-4", "address"]),
    links: links
      .split("\n")
      .map((l) => l.split(/\s+/)[0])
      .sort()
      .join(" "),
    nft: await run(["nft", "list", "ruleset"]),
  };
}
