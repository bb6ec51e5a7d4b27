import { link, mkdir, rename, unlink, writeFile } from "node:fs/promises";
import * as z from "zod";
import { NetpolError } from "../../errors.js";
import { isoTime } from "../host.js";
import type { Target } from "../target.js";
import { parseState, readText, type StateFiles, stateFile, stateWriteError } from "./files.js";
import { processIdentity } from "./process-identity.js";

const lockSchema = z.strictObject({
  holder: processIdentity,
  command: z.string(),
  since: z.string(),
});
type LockFile = z.infer<typeof lockSchema>;

const LOCK = ".lock";
/** Lock attempts this process made: part of each attempt's private file name. */
let attempts = 0;

export interface LockOptions {
  /** What the holder is doing, shown to whoever is refused. */
  readonly command?: string;
  /** Wait this long (ms) for a live holder to finish instead of refusing at once. */
  readonly waitMs?: number;
}

/** The lock's holder if it is still running; a crashed or recycled one is stale. */
export async function lockHolder({ files, host }: Target): Promise<LockFile | undefined> {
  const file = stateFile(files, LOCK);
  const text = await readText(file);
  if (text === undefined) return undefined;
  const held = parseState(files, file, "lock file", lockSchema, text);
  return host.isRunning(held.holder) ? held : undefined;
}

/**
 * Creates the lock with its content in one step: the content goes to a private file that is
 * then hard-linked to the lock's name, which fails if the lock exists. So a lock file is never
 * seen empty or half written.
 */
async function tryCreate(files: StateFiles, content: LockFile): Promise<boolean> {
  const file = stateFile(files, LOCK);
  // Numbered as well: two applies in one process (the server) may try in the same millisecond,
  // and the one that finishes first would remove the other's file before it is linked.
  const mine = `${file}.${content.holder.pid}.${Date.now()}.${++attempts}`;
  await writeFile(mine, JSON.stringify(content), { mode: 0o600 }).catch(async (err: unknown) => {
    await unlink(mine).catch(() => undefined);
    throw stateWriteError(file, err);
  });
  try {
    await link(mine, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return false;
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/**
 * Moves a stale lock out of the way. Renaming first means two processes that both found it
 * stale cannot remove each other's fresh lock: whoever renamed a live one puts it back.
 */
async function clearStale({ files, host }: Target): Promise<void> {
  const file = stateFile(files, LOCK);
  const aside = `${file}.stale.${process.pid}.${Date.now()}`;
  const moved = await rename(file, aside).then(
    () => true,
    () => false,
  );
  if (!moved) return;
  let held: LockFile | undefined;
  try {
    held = lockSchema.parse(JSON.parse((await readText(aside)) ?? ""));
  } catch {
    held = undefined;
  }
  if (held && host.isRunning(held.holder)) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/**
 * One apply per namespace at a time, across processes and within one (the server). The lock
 * names its holder by pid and start time, so a holder that died (kill -9, reboot) or a pid
 * that now belongs to another process does not block; an unreadable lock is reported with the
 * command that clears it.
 */
export async function withLock<T>(
  target: Target,
  work: () => Promise<T>,
  options: LockOptions = {},
): Promise<T> {
  const { files, host } = target;
  await mkdir(files.stateDir, { recursive: true, mode: 0o700 });
  const me: LockFile = {
    holder: host.self(),
    command: options.command ?? process.argv.slice(2, 3).join(" "),
    since: isoTime(host),
  };
  const giveUp = host.now() + (options.waitMs ?? 0);
  for (;;) {
    if (await tryCreate(files, me)) break;
    const holder = await lockHolder(target);
    if (!holder) {
      await clearStale(target);
      continue;
    }
    if (host.now() >= giveUp) {
      throw new NetpolError(
        "NETPOL_E_LOCKED",
        `another apply (pid ${holder.holder.pid}) is running on ${files.scope} since ${holder.since} (${holder.command || "netpol"}); wait for it to finish (lock: ${stateFile(files, LOCK)})`,
      );
    }
    await host.sleep(100);
  }
  try {
    return await work();
  } finally {
    await unlink(stateFile(files, LOCK)).catch(() => undefined);
  }
}
