import { randomBytes } from "node:crypto";
import { type FileHandle, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import type { z } from "zod";
import { NetpolError } from "../../errors.js";
import { commandLine, type Naming } from "../../next-command.js";

/**
 * Files netpol keeps in its state directory: parsed with a schema on the way in (a truncated or
 * hand-edited file is reported, never trusted), written atomically and durably on the way out.
 */

/** Where a scope's state files live, and how the operator named it (for the commands we hint). */
export interface StateFiles {
  readonly stateDir: string;
  readonly scope: string;
  readonly naming: Naming;
}

export function stateFile(files: StateFiles, suffix: string): string {
  return path.join(files.stateDir, `${files.scope}${suffix}`);
}

export function corrupt(files: StateFiles, file: string, what: string, why: string): NetpolError {
  const next = { verb: "recover" } as const;
  const recovery = commandLine(next, files.naming);
  return new NetpolError(
    "NETPOL_E_STATE_CORRUPT",
    `${what} ${file} is unreadable (${why}); run \`${recovery}\` to set it aside, then apply again`,
    [],
    { details: { recovery, next } },
  );
}

/** The file's text, or undefined when it does not exist. */
export async function readText(file: string): Promise<string | undefined> {
  return readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
}

/** Parses a JSON state file against its schema; a missing file is undefined. */
export async function readState<S extends z.ZodType>(
  files: StateFiles,
  suffix: string,
  what: string,
  schema: S,
): Promise<z.infer<S> | undefined> {
  const file = stateFile(files, suffix);
  const text = await readText(file);
  if (text === undefined) return undefined;
  return parseState(files, file, what, schema, text);
}

export function parseState<S extends z.ZodType>(
  files: StateFiles,
  file: string,
  what: string,
  schema: S,
  text: string,
): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw corrupt(files, file, what, text.trim() === "" ? "empty" : "not JSON");
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const where = first?.path.length ? `${first.path.join(".")}: ` : "";
    throw corrupt(files, file, what, `${where}${first?.message ?? "wrong shape"}`);
  }
  return parsed.data;
}

/**
 * Replaces the file whole: a temporary file beside it is written to the last byte, its size
 * checked, fsynced and renamed over it, and the directory is fsynced so the rename itself
 * survives a power cut. Mode 0600: some hold keys. A cache, which is rebuilt when lost or
 * unreadable, skips the fsyncs (`durable: false`). A write that cannot complete (a full or
 * read-only filesystem) leaves the old file as it was and is a NETPOL_E_STATE_WRITE naming the
 * file and the errno. `openFile` is how the temp file is opened: a test's filesystem that fills
 * up wraps the real one.
 */
export async function writeState(
  file: string,
  text: string,
  durable = true,
  openFile: typeof open = open,
): Promise<void> {
  const dir = path.dirname(file);
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    const handle = await openIn(dir, temp, openFile);
    try {
      await writeWhole(handle, Buffer.from(text, "utf8"));
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    if (durable) await syncDir(dir);
  } catch (err) {
    await rm(temp, { force: true });
    throw stateWriteError(file, err);
  }
}

/**
 * The directories this process made or found: writeState's mkdir once per directory, not on
 * every write (a thousand fleet agents in one process spent a second of CPU each in it,
 * bench/fleet.ts --profile). One removed since (`recover`, a test's clean-up) is made again.
 */
const madeDirs = new Set<string>();

async function openIn(dir: string, temp: string, openFile: typeof open): Promise<FileHandle> {
  if (!madeDirs.has(dir)) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    madeDirs.add(dir);
  }
  try {
    return await openFile(temp, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return openFile(temp, "wx", 0o600);
  }
}

/**
 * write(2) may write less than asked (a filesystem filling up writes what fits): go on from
 * where it stopped until every byte is written or the kernel says why not. Then the file's
 * size must be the text's, or the rename would put a cut file in place.
 */
async function writeWhole(handle: FileHandle, bytes: Buffer): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, done);
    if (bytesWritten <= 0)
      throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    done += bytesWritten;
  }
  const { size } = await handle.stat();
  if (size !== bytes.length)
    throw Object.assign(new Error(`${size} of ${bytes.length} bytes on disk`), { code: "EIO" });
}

const WHY: Readonly<Record<string, string>> = {
  ENOSPC: "no space left on the filesystem",
  EDQUOT: "the disk quota is used up",
  EROFS: "the filesystem is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EIO: "input/output error",
};

/**
 * A state file that cannot be written, as the error to throw: which file, which errno, and what
 * the operator can do. Anything without an errno is passed on as it was.
 */
export function stateWriteError(file: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (err instanceof NetpolError || typeof code !== "string") return err;
  const why = WHY[code] ?? (err as Error).message;
  return new NetpolError(
    "NETPOL_E_STATE_WRITE",
    `cannot write ${file}: ${why} (${code}); make room on (or remount writable) the filesystem of ${path.dirname(file)}, or choose another --state-dir, then try again`,
    [],
    { cause: err },
  );
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeState(file, `${JSON.stringify(value, null, 2)}\n`);
}

export async function removeState(file: string): Promise<void> {
  await rm(file, { force: true });
  await syncDir(path.dirname(file));
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r").catch(() => undefined);
  if (!handle) return;
  await handle.sync().finally(() => handle.close());
}

/** Where 0600 files that hand secrets to tools live for a moment: never the shared temp dir. */
export const secretDirOf = (files: StateFiles) => stateFile(files, ".secrets");

/** netpol's PROXY-protocol relay: its haproxy configuration and haproxy's pid file. */
export const relayFilesOf = (files: StateFiles) => ({
  config: stateFile(files, ".relay.cfg"),
  pid: stateFile(files, ".relay.pid"),
});
