import { randomBytes } from "node:crypto";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/**
 * Hands a secret to a tool as a file readable by the owner only, in a directory of netpol's
 * own (never the shared temp directory), removed afterwards. `wg` cannot read /dev/stdin when
 * stdin is the socket Node gives child processes (ENXIO).
 */
export async function withSecretFile<T>(
  dir: string,
  content: string,
  use: (file: string) => Promise<T>,
): Promise<T> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${process.pid}-${randomBytes(6).toString("hex")}.conf`);
  try {
    await writeFile(file, content, { mode: 0o600, flag: "wx" });
    return await use(file);
  } finally {
    await rm(file, { force: true });
  }
}

/** Removes what a killed process left in the directory; call it holding the scope's lock. */
export async function removeStaleSecrets(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(names.map((n) => rm(path.join(dir, n), { force: true })));
}
