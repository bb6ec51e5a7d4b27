import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { NetpolError } from "../../errors.js";
import type { Runner } from "../runner.js";

/**
 * netpol's PROXY-protocol relay: haproxy, started by netpol in the site's namespace as a
 * daemon (`-D`), its configuration and pid file in netpol's state directory. The pid file is
 * haproxy's own; a pid counts as the relay only while /proc says that process is haproxy
 * reading this very configuration file, so a pid the kernel gave to someone else is never
 * signalled. A change of configuration starts a new haproxy that takes the ports over and
 * tells the old one to finish its connections (`-sf`; bounded by `hard-stop-after`).
 */

export interface RelayFiles {
  readonly config: string;
  readonly pid: string;
}

/** The relay as found: the configuration it was last started with, and its process. */
export interface RelayLive {
  readonly files: RelayFiles;
  readonly config?: string;
  readonly pid?: number;
}

const readOrUndefined = (file: string) =>
  readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });

/** Whether `pid` is haproxy running with `config`: its command line names the file. */
async function isRelay(pid: number, config: string): Promise<boolean> {
  const cmdline = await readOrUndefined(`/proc/${pid}/cmdline`);
  if (cmdline === undefined) return false;
  const argv = cmdline.split("\0");
  return /(^|\/)haproxy$/.test(argv[0] ?? "") && argv.includes(config);
}

export async function readRelay(files: RelayFiles): Promise<RelayLive> {
  const [config, pidText] = await Promise.all([
    readOrUndefined(files.config),
    readOrUndefined(files.pid),
  ]);
  const pid = Number.parseInt(pidText?.trim() ?? "", 10);
  const running = Number.isInteger(pid) && pid > 0 && (await isRelay(pid, files.config));
  return { files, ...(config !== undefined ? { config } : {}), ...(running ? { pid } : {}) };
}

/**
 * Replaced whole by a rename, never fsynced: a file lost in a power cut only makes the next
 * plan start the relay again.
 */
async function writeConfig(files: RelayFiles, text: string | undefined): Promise<void> {
  if (text === undefined) return rm(files.config, { force: true });
  const temp = `${files.config}.${process.pid}.tmp`;
  await writeFile(temp, text, { mode: 0o600 });
  await rename(temp, files.config);
}

/**
 * Runs `config`: a first haproxy, or a new one taking over from `live`'s. haproxy binds every
 * port before it detaches, so a port taken or a configuration it refuses fails here, with its
 * words; the old process (if any) then serves on, and its configuration file is put back.
 */
export async function startRelay(
  runner: Runner,
  live: RelayLive,
  config: string,
  step: string,
): Promise<void> {
  const { files } = live;
  await writeConfig(files, config);
  const takeOver = live.pid !== undefined ? ["-sf", String(live.pid)] : [];
  try {
    await runner.run("haproxy", ["-D", "-f", files.config, "-p", files.pid, ...takeOver], { step });
  } catch (err) {
    await writeConfig(files, live.config);
    throw withoutNotices(err);
  }
}

/** haproxy's failure with only its alerts: it opens every answer with its version and path. */
function withoutNotices(err: unknown): unknown {
  if (!(err instanceof NetpolError) || typeof err.details.stderr !== "string") return err;
  const alerts = err.details.stderr
    .split("\n")
    .filter((l) => !l.startsWith("[NOTICE]"))
    .join("\n");
  return new NetpolError(
    err.code,
    `netpol's PROXY-protocol relay (haproxy) did not start${err.details.step ? ` during ${err.details.step}` : ""}: ${alerts}`,
    [],
    { cause: err, details: { ...err.details, stderr: alerts } },
  );
}

/** Stops the relay (SIGTERM: haproxy closes its ports at once) and waits until it is gone. */
export async function stopRelay(live: RelayLive): Promise<void> {
  const { pid, files } = live;
  if (pid !== undefined && (await isRelay(pid, files.config))) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // It ended between the check and the signal.
    }
    for (let i = 0; i < 50 && (await isRelay(pid, files.config)); i++)
      await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all([rm(files.pid, { force: true }), writeConfig(files, undefined)]);
}

/** Puts the relay back as `config` says: stopped where it is undefined, else running it. */
export async function putRelay(
  runner: Runner,
  live: RelayLive,
  config: string | undefined,
  step: string,
): Promise<void> {
  if (config === undefined) await stopRelay(live);
  else if (live.pid === undefined || live.config !== config)
    await startRelay(runner, live, config, step);
}
