import type { Stats } from "node:fs";
import { constants } from "node:fs";
import { open } from "node:fs/promises";

/**
 * Reads a small secret file (a private key, a token) without trusting what the name holds.
 * It is opened with O_NONBLOCK, so a FIFO put in its place answers at once instead of blocking
 * the open (and the apply lock with it) until someone writes to it; only a regular file is
 * read, and no further than `maxBytes`, so a huge file is refused without being loaded.
 */
export type SmallFile =
  | { readonly ok: true; readonly text: string; readonly mode: number }
  | { readonly ok: false; readonly why: "missing" }
  | { readonly ok: false; readonly why: "link" }
  | { readonly ok: false; readonly why: "not a file"; readonly is: string }
  | { readonly ok: false; readonly why: "too large"; readonly size: number }
  | { readonly ok: false; readonly why: "error"; readonly code: string };

function kindOf(info: Stats): string {
  if (info.isFIFO()) return "a FIFO (named pipe)";
  if (info.isDirectory()) return "a directory";
  if (info.isSocket()) return "a socket";
  if (info.isCharacterDevice() || info.isBlockDevice()) return "a device";
  return "not a regular file";
}

export async function readSmallFile(
  file: string,
  maxBytes: number,
  { noFollow = false }: { readonly noFollow?: boolean } = {},
): Promise<SmallFile> {
  const flags = constants.O_RDONLY | constants.O_NONBLOCK | (noFollow ? constants.O_NOFOLLOW : 0);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "EIO";
    if (code === "ENOENT") return { ok: false, why: "missing" };
    if (code === "ELOOP" && noFollow) return { ok: false, why: "link" };
    return { ok: false, why: "error", code };
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) return { ok: false, why: "not a file", is: kindOf(info) };
    if (info.size > maxBytes) return { ok: false, why: "too large", size: info.size };
    const buf = Buffer.alloc(maxBytes + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, size, buf.length - size, size);
      size += bytesRead;
      if (bytesRead === 0 || size === buf.length) break;
    }
    // It grew between the stat and the read: no more trusted than a large one.
    if (size > maxBytes) return { ok: false, why: "too large", size };
    return { ok: true, text: buf.toString("utf8", 0, size), mode: info.mode };
  } finally {
    await handle.close();
  }
}
