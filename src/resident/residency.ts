import path from "node:path";
import { isoTime } from "../apply/host.js";
import { stateFile } from "../apply/state/files.js";
import { holdFile, type LockFile } from "../apply/state/lock.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";

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

function refused(target: Target, held: LockFile, mine: string): NetpolError {
  const where = target.runner.netns ? `namespace ${target.runner.netns}` : "this machine";
  const unit = UNITS[held.command];
  return new NetpolError(
    "NETPOL_E_RESIDENT_RUNNING",
    `netpol ${mine} not started: the resident process of ${where} is already running, \`netpol ${held.command}\` (pid ${held.holder.pid}, since ${held.since}, state in ${held.stateDir ?? "another state directory"}); a site runs one of watch, serve and agent (\`netpol agent --listen\` serves HTTP as serve does): stop that one first${unit ? ` (systemctl stop ${unit})` : ""}, or use it`,
  );
}

/**
 * One resident process per site: `netpol watch`, `netpol serve` and `netpol agent` each host
 * the site's resident (docs/resident.md), and two of them on one namespace would be two live
 * models and two reconcilers taking turns at the apply lock, each undoing what the other's
 * policy feed does not know. So a resident holds the namespace for as long as it runs: a file
 * beside the namespace's apply lock (named, as that one is, by the namespace's nsfs device and
 * inode, so another state directory finds it too), naming its pid and start time. A second
 * one refuses to start, naming the first; a holder that died (kill -9, reboot) is taken over.
 *
 * Takes the site for the resident `command` (`watch`, `serve`, `agent`) runs, or refuses with
 * NETPOL_E_RESIDENT_RUNNING naming the one that holds it. Resolves with the release.
 */
export async function holdResidency(target: Target, command: string): Promise<() => Promise<void>> {
  const me: LockFile = {
    holder: target.host.self(),
    command,
    since: isoTime(target.host),
    stateDir: path.resolve(target.files.stateDir),
  };
  return holdFile(target, await fileOf(target), me, (held) => refused(target, held, command));
}
