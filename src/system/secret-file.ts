import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

/**
 * Hands a secret to a tool as a file readable by the owner only, removed afterwards. `wg`
 * cannot read /dev/stdin when stdin is the socket Node gives child processes (ENXIO).
 */
export async function withSecretFile<T>(
  content: string,
  use: (file: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-"));
  const file = path.join(dir, "secret.conf");
  try {
    await writeFile(file, content, { mode: 0o600 });
    return await use(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
