import { link, mkdir, rename, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import { isoTime } from "../apply/host.js";
import { readText, stateFile, stateWriteError } from "../apply/state/files.js";
import { processIdentity } from "../apply/state/process-identity.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";

/**
 * One resident process per site: `netpol watch`, `netpol serve` and `netpol agent` each host
 * the site's resident (docs/resident.md), and two of them on one namespace would be two live
 * models and two reconcilers taking turns at the apply lock, each undoing what the other's
 * policy feed does not know. So a resident holds the namespace for as long as it runs: a file
 * beside the namespace's apply lock (named, as that one is, by the namespace's nsfs device and
 * inode, so another state directory finds it too), naming its pid and start time. A second
 * one refuses to start, naming the first; a holder that died (kill -9, reboot) is taken over.
 */
const residentSchema = z.strictObject({
  holder: processIdentity,
  command: z.string(),
  since: z.string(),
  stateDir: z.string(),
});
type Residency = z.infer<typeof residentSchema>;

/** The unit that runs each resident command, for the hint. */
const UNITS: Readonly<Record<string, string>> = {
  watch: "netpol-watch.service",
  serve: "netpol-serve.service",
  agent: "netpol-agent.service",
};

async function fileOf(target: Target): Promise<string> {
  const nsLock = await target.host.namespaceLock(target.runner.netns);
  return nsLock ? nsLock.replace(/\.lock$/, ".resident") : stateFile(target.files, ".resident");
}

async function holderOf(target: Target, file: string): Promise<Residency | undefined> {
  const text = await readText(file).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const held = residentSchema.parse(JSON.parse(text));
    return target.host.isRunning(held.holder) ? held : undefined;
  } catch {
    // Linked into place whole: an unreadable one was never a resident's.
    return undefined;
  }
}

function refused(target: Target, held: Residency, mine: string): NetpolError {
  const where = target.runner.netns ? `namespace ${target.runner.netns}` : "this machine";
  const unit = UNITS[held.command];
  return new NetpolError(
    "NETPOL_E_RESIDENT_RUNNING",
    `netpol ${mine} not started: the resident process of ${where} is already running, \`netpol ${held.command}\` (pid ${held.holder.pid}, since ${held.since}, state in ${held.stateDir}); a site runs one of watch, serve and agent (\`netpol agent --listen\` serves HTTP as serve does): stop that one first${unit ? ` (systemctl stop ${unit})` : ""}, or use it`,
  );
}

/**
 * Takes the site for the resident `command` (`watch`, `serve`, `agent`) runs, or refuses with
 * NETPOL_E_RESIDENT_RUNNING naming the one that holds it. Resolves with the release.
 */
export async function holdResidency(target: Target, command: string): Promise<() => Promise<void>> {
  const file = await fileOf(target);
  const me: Residency = {
    holder: target.host.self(),
    command,
    since: isoTime(target.host),
    stateDir: path.resolve(target.files.stateDir),
  };
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw stateWriteError(file, err);
  });
  const mine = `${file}.${me.holder.pid}.${Date.now()}`;
  await writeFile(mine, JSON.stringify(me), { mode: 0o600 }).catch((err: unknown) => {
    throw stateWriteError(file, err);
  });
  try {
    for (;;) {
      const linked = await link(mine, file).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code !== "EEXIST") throw stateWriteError(file, err);
          return false;
        },
      );
      if (linked) break;
      const held = await holderOf(target, file);
      if (held) throw refused(target, held, command);
      await clearStale(target, file);
    }
  } finally {
    await unlink(mine).catch(() => undefined);
  }
  return async () => {
    const now = await readText(file).catch(() => undefined);
    if (now === JSON.stringify(me)) await unlink(file).catch(() => undefined);
  };
}

/**
 * Moves a dead holder's file out of the way. Renamed first, so two starting at once cannot
 * remove each other's fresh file: whoever moved a live one puts it back.
 */
async function clearStale(target: Target, file: string): Promise<void> {
  const aside = `${file}.stale.${process.pid}.${Date.now()}`;
  if (
    !(await rename(file, aside).then(
      () => true,
      () => false,
    ))
  )
    return;
  if (await holderOf(target, aside)) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}
