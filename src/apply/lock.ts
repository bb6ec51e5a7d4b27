import { mkdir, open, readFile, unlink } from "node:fs/promises";
import path from "node:path";
import { NetpolError } from "../errors.js";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * One apply per namespace at a time, across processes and within one (the server): the lock
 * is a file created exclusively, holding the owner's pid. A lock whose owner died is taken over.
 */
export async function withLock<T>(
  stateDir: string,
  scope: string,
  work: () => Promise<T>,
): Promise<T> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, `${scope}.lock`);
  for (let attempt = 0; ; attempt++) {
    const handle = await open(file, "wx", 0o600).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
      const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (attempt === 0 && Number.isInteger(pid) && pid > 0 && !alive(pid)) {
        await unlink(file).catch(() => undefined);
        return undefined;
      }
      throw new NetpolError(
        "NETPOL_E_LOCKED",
        `another apply (pid ${pid || "unknown"}) is running on ${scope}; wait for it to finish (lock: ${file})`,
      );
    });
    if (!handle) continue;
    try {
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return await work();
    } finally {
      await unlink(file).catch(() => undefined);
    }
  }
}
