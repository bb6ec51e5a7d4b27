import { readFile } from "node:fs/promises";
import path from "node:path";

/** The node flags bin/netpol.js's first line gives, so a bench process runs as the CLI does. */
export async function cliNodeFlags(): Promise<string[]> {
  const bin = await readFile(path.join(import.meta.dirname, "..", "bin", "netpol.js"), "utf8");
  return (bin.split("\n")[0] ?? "").split(" ").filter((word) => word.startsWith("--"));
}
