import { link, mkdir, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import { NetpolError } from "../../errors.js";
import { isoTime } from "../host.js";
import type { Target } from "../target.js";
import { parseState, readText, stateFile, stateWriteError } from "./files.js";
import { processIdentity } from "./process-identity.js";

const lockSchema = z.strictObject({
  holder: processIdentity,
  command: z.string(),
  since: z.string(),
  /** The holder's state directory: whoever is refused the namespace's lock is told where. */
  stateDir: z.string().optional(),
});
export type LockFile = z.infer<typeof lockSchema>;

const LOCK = ".lock";
/** Lock attempts this process made: part of each attempt's private file name. */
let attempts = 0;

export interface LockOptions {
  /** What the holder is doing, shown to whoever is refused. */
  readonly command?: string;
  /** Wait this long (ms) for a live holder to finish instead of refusing at once. */
  readonly waitMs?: number;
}

/**
 * One of the two locks an apply holds: the state directory's (its files) and the namespace's
 * (its kernel state, whatever state directory an apply keeps: two of them on one namespace
 * once made two applies at once, both failing). `read` gives the holder named in it.
 */
interface Lock {
  readonly file: string;
  read(text: string): LockFile | undefined;
  busy(held: LockFile): NetpolError;
}

/** The state directory's lock: an unreadable one is reported, with the command that clears it. */
function stateLock({ files }: Target): Lock {
  const file = stateFile(files, LOCK);
  return {
    file,
    read: (text) => parseState(files, file, "lock file", lockSchema, text),
    busy: (held) =>
      new NetpolError(
        "NETPOL_E_LOCKED",
        `another apply (pid ${held.holder.pid}) is running on ${files.scope} since ${held.since} (${held.command || "netpol"}); wait for it to finish (lock: ${file})`,
      ),
  };
}

/**
 * The namespace's lock, in a runtime directory. Its content is linked into place whole, so an
 * unreadable one was never a holder's (a hand's, a disk that filled): it is taken over.
 */
function namespaceLock({ runner }: Target, file: string): Lock {
  const where = runner.netns ? `namespace ${runner.netns}` : "this machine's own namespace";
  return {
    file,
    read: linkedWhole,
    busy: (held) =>
      new NetpolError(
        "NETPOL_E_LOCKED",
        `another apply (pid ${held.holder.pid}) is running on ${where} since ${held.since} (${held.command || "netpol"}), with its state in ${held.stateDir ?? "another state directory"}; one namespace takes one apply at a time, whatever its state directory: wait for it to finish (lock: ${file})`,
      ),
  };
}

/** A lock linked into place whole: one that does not read was never a holder's. */
function linkedWhole(text: string): LockFile | undefined {
  try {
    return lockSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** The lock's holder if it is still running; a crashed or recycled one is stale. */
async function holderOf({ host }: Target, lock: Lock): Promise<LockFile | undefined> {
  const text = await readText(lock.file);
  if (text === undefined) return undefined;
  const held = lock.read(text);
  return held && host.isRunning(held.holder) ? held : undefined;
}

/** The state directory's lock holder if it is still running; a crashed or recycled one is stale. */
export async function lockHolder(target: Target): Promise<LockFile | undefined> {
  return holderOf(target, stateLock(target));
}

/**
 * Creates the lock with its content in one step: the content goes to a private file that is
 * then hard-linked to the lock's name, which fails if the lock exists. So a lock file is never
 * seen empty or half written.
 */
async function tryCreate(file: string, content: LockFile): Promise<boolean> {
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
async function clearStale({ host }: Target, lock: Lock): Promise<void> {
  const aside = `${lock.file}.stale.${process.pid}.${Date.now()}`;
  const moved = await rename(lock.file, aside).then(
    () => true,
    () => false,
  );
  if (!moved) return;
  let held: LockFile | undefined;
  try {
    held = lock.read((await readText(aside)) ?? "");
  } catch {
    held = undefined;
  }
  if (held && host.isRunning(held.holder)) await link(aside, lock.file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/** Takes the lock, a stale one over; a live holder refuses once `giveUp` (host time) passed. */
async function take(target: Target, lock: Lock, me: LockFile, giveUp: number): Promise<void> {
  for (;;) {
    if (await tryCreate(lock.file, me)) return;
    const holder = await holderOf(target, lock);
    if (!holder) {
      await clearStale(target, lock);
      continue;
    }
    if (target.host.now() >= giveUp) throw lock.busy(holder);
    await target.host.sleep(100);
  }
}

/**
 * One apply per namespace at a time, across processes and within one (the server), and
 * across state directories: the state directory's lock, then the namespace's (always in this
 * order, so two applies never wait on each other in a circle). A lock names its holder by pid
 * and start time, so a holder that died (kill -9, reboot) or a pid that now belongs to another
 * process does not block; an unreadable state lock is reported with the command that clears it.
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
    stateDir: path.resolve(files.stateDir),
  };
  const giveUp = host.now() + (options.waitMs ?? 0);
  const own = stateLock(target);
  await take(target, own, me, giveUp);
  try {
    const nsFile = await host.namespaceLock(target.runner.netns);
    if (!nsFile) return await work();
    await mkdir(path.dirname(nsFile), { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw stateWriteError(nsFile, err);
    });
    await take(target, namespaceLock(target, nsFile), me, giveUp);
    try {
      return await work();
    } finally {
      await unlink(nsFile).catch(() => undefined);
    }
  } finally {
    await unlink(own.file).catch(() => undefined);
  }
}

/**
 * Holds `file` for as long as the caller runs (a resident holds its namespace: residency.ts),
 * taken as the locks are: linked into place whole, a dead holder's taken over, a live holder
 * refused at once with `busy`. Resolves with the release, which removes only this holder's file.
 */
export async function holdFile(
  target: Target,
  file: string,
  me: LockFile,
  busy: (held: LockFile) => NetpolError,
): Promise<() => Promise<void>> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw stateWriteError(file, err);
  });
  await take(target, { file, read: linkedWhole, busy }, me, target.host.now());
  return async () => {
    const now = await readText(file).catch(() => undefined);
    if (now === JSON.stringify(me)) await unlink(file).catch(() => undefined);
  };
}
