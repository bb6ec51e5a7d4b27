import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

/**
 * The routing protocol names this machine knows (iproute2's rt_protos and its drop-in
 * directory): a number named there belongs to a daemon someone installed, even if netpol's
 * built-in list does not know it.
 */
const DIRS = ["/etc/iproute2", "/usr/share/iproute2"];

/** `NUMBER NAME` lines; comments and anything else are skipped. */
function parseRtProtos(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+|0x[0-9a-f]+)\s+([\w.-]+)/i.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) names.set(Number(m[1]), m[2]);
  }
  return names;
}

export async function readRtProtos(dirs: readonly string[] = DIRS): Promise<Map<number, string>> {
  const names = new Map<number, string>();
  for (const dir of dirs) {
    const dropIns = await readdir(path.join(dir, "rt_protos.d")).catch(() => [] as string[]);
    const files = [
      path.join(dir, "rt_protos"),
      ...dropIns.filter((f) => f.endsWith(".conf")).map((f) => path.join(dir, "rt_protos.d", f)),
    ];
    for (const file of files) {
      const text = await readFile(file, "utf8").catch(() => "");
      for (const [n, name] of parseRtProtos(text)) names.set(n, name);
    }
  }
  return names;
}
