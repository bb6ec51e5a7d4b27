import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { NetpolError } from "../errors.js";
import { type Session, spawnSession } from "./session.js";
import type { WireguardControl } from "./wireguard-uapi.js";

export interface RunOptions {
  /** Written to the tool's stdin (configs with keys go here, never into argv). */
  readonly input?: string;
  /** The apply step this command belongs to, for the error message. */
  readonly step?: string;
  /**
   * A long answer that holds no secret (a listing): the tool writes it to a file rather than
   * a pipe, so it runs to its end while netpol is busy (validating a policy) instead of
   * waiting, 64 KiB at a time, for netpol to empty the pipe.
   */
  readonly spool?: boolean;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface SessionOptions {
  /** Stops the tool; the session then ends without an error. */
  readonly signal: AbortSignal;
  /** Each line the tool writes to stdout, as it comes. */
  readonly onLine: (line: string) => void;
}

/** Every system command netpol runs goes through one Runner, so tests can count and aim them. */
export interface Runner {
  readonly netns: string | undefined;
  run(tool: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /**
   * A tool that runs until stopped (`ip monitor`), read line by line; ends when the tool exits.
   * It runs where and as every other command does: in the namespace, with the parent-death
   * signal, counted.
   */
  session(tool: string, args: readonly string[], options: SessionOptions): Promise<void>;
  /**
   * Starts a tool that runs on beside netpol and takes input for as long as it runs (`ip
   * -batch -` on a pipe): the same namespace, parent-death signal and count as every other.
   */
  start(tool: string, args: readonly string[], options?: { readonly step?: string }): Session;
  /** How many processes this runner has started. */
  readonly spawned: number;
  /**
   * WireGuard's control sockets, where netpol keeps them open (a resident process): reads and
   * changes of WireGuard interfaces then cost no `wg` process.
   */
  readonly wireguard?: WireguardControl;
}

/** `inner` with its `run` replaced (a test's injected failure, a progress line). */
export function withRun(inner: Runner, run: Runner["run"]): Runner {
  return {
    netns: inner.netns,
    get spawned() {
      return inner.spawned;
    },
    run,
    session: (tool, args, options) => inner.session(tool, args, options),
    start: (tool, args, options) => inner.start(tool, args, options),
    ...(inner.wireguard ? { wireguard: inner.wireguard } : {}),
  };
}

/** Hides anything that looks like a WireGuard key before it reaches a message or a log. */
export function redact(text: string): string {
  return text.replace(/[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/g, "(key)");
}

export function commandLine(tool: string, args: readonly string[]): string {
  return redact([tool, ...args].join(" "));
}

/** Where the tools netpol runs come from on Debian and Ubuntu, for the "not installed" error. */
const DEBIAN_PACKAGE: Readonly<Record<string, string>> = {
  ip: "iproute2",
  ss: "iproute2",
  nft: "nftables",
  wg: "wireguard-tools",
  setpriv: "util-linux",
};

export function toolMissing(tool: string): NetpolError {
  return new NetpolError(
    "NETPOL_E_TOOL_MISSING",
    `${tool} is not installed; run \`apt-get install --no-install-recommends ${DEBIAN_PACKAGE[tool] ?? tool}\` (or deploy/install-deps.sh from a checkout)`,
  );
}

/** The one message for a failed command, whichever Runner ran it. */
export function toolFailed(
  tool: string,
  args: readonly string[],
  netns: string | undefined,
  options: RunOptions,
  exitCode: number | undefined,
  said: string,
): NetpolError {
  const where = options.step ? ` during ${options.step}` : "";
  const command = commandLine(tool, args);
  return new NetpolError(
    "NETPOL_E_TOOL_FAILED",
    `\`${command}\`${netns ? ` in netns ${netns}` : ""} failed${where} (exit ${exitCode}): ${redact(said.trim())}`,
    [],
    {
      details: {
        command,
        ...(options.step ? { step: options.step } : {}),
        ...(netns ? { netns } : {}),
        ...(exitCode !== undefined ? { exitCode } : {}),
        stderr: redact(said.trim()),
      },
    },
  );
}

/**
 * A file for a tool's answer, unlinked at once so nothing is left behind whatever happens:
 * the descriptor alone reaches it. Opened synchronously, so the tool starts at once. Where no
 * temporary file can be made, the answer comes through a pipe as any other: only slower.
 */
function spoolFile(): number | undefined {
  const file = path.join(os.tmpdir(), `netpol-${process.pid}-${randomBytes(6).toString("hex")}`);
  try {
    const fd = openSync(file, "wx+", 0o600);
    unlinkSync(file);
    return fd;
  } catch {
    return undefined;
  }
}

/**
 * What the tool wrote to the spool file, from its start, without its final newline (as execa
 * gives a pipe's answer: the same listing reads the same either way); the descriptor is closed.
 */
function readSpool(fd: number): string {
  try {
    const bytes = Buffer.alloc(fstatSync(fd).size);
    let at = 0;
    while (at < bytes.length) at += readSync(fd, bytes, at, bytes.length - at, at);
    return bytes.toString("utf8").replace(/\r?\n$/, "");
  } finally {
    closeSync(fd);
  }
}

/**
 * execa, loaded with the first command rather than with the Runner: it and the modules it brings
 * are some 7 MB of a resident process's memory (bench/agent-memory.ts), and the fleet agent
 * waiting for its first revision, or a resident whose long-lived tools start as sessions, runs
 * no command for a long while.
 */
const loadExeca = () => import("execa").then((m) => m.execa);

/**
 * What a terminal sends its whole foreground job, and how often a command is started when one
 * of them kills it before it ran (below). Not SIGTERM: a service manager sends it to every
 * process of the unit's cgroup, own process group or not, so a tool it killed may have run
 * partway, and running it again would repeat what it did.
 */
const JOB_SIGNALS: ReadonlySet<string> = new Set(["SIGHUP", "SIGINT"]);
const SPAWN_RETRIES = 3;

/**
 * Runs tools with argument arrays (never a shell). With a namespace, each command runs under
 * `ip netns exec NS`, so the caller's code is the same inside and outside one.
 */
export function createRunner(netns?: string): Runner {
  let spawned = 0;
  // A tool dies with netpol (parent-death signal): a killed apply leaves no `ip -batch`
  // running on behind the next one, which has taken its stale lock over. It runs in its own
  // process group (`detached`), so a terminal's hang-up or Ctrl-C reaches netpol alone, which
  // then goes on or stops between two commands (cli/signals.ts), never in the middle of one.
  const argv = (tool: string, args: readonly string[]) => [
    "--pdeathsig",
    "KILL",
    ...(netns ? ["ip", "netns", "exec", netns, tool, ...args] : [tool, ...args]),
  ];
  const env = { LC_ALL: "C", PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` };
  const failure = (
    tool: string,
    args: readonly string[],
    options: RunOptions,
    run: { code?: string; stderr?: unknown; exitCode?: number; shortMessage?: string },
    stdout: string,
  ): NetpolError => {
    const stderr = typeof run.stderr === "string" ? run.stderr : "";
    if (run.code === "ENOENT") return toolMissing("setpriv");
    if (/failed to execute|exec of .* failed: No such file/.test(stderr)) return toolMissing(tool);
    // Both streams: some tools log their error on stdout (wireguard-go), a banner on stderr.
    const said = [stderr, stdout].filter((t) => t.trim() !== "").join("\n");
    return toolFailed(tool, args, netns, options, run.exitCode, said || `${run.shortMessage}`);
  };
  return {
    netns,
    get spawned() {
      return spawned;
    },
    async run(tool, args, options = {}) {
      for (let attempt = 1; ; attempt++) {
        spawned++;
        const spool = options.spool ? spoolFile() : undefined;
        const execa = await loadExeca();
        const run = await execa("setpriv", argv(tool, args), {
          input: options.input ?? "",
          // execa hands any descriptor to spawn(2); its types name only 1 and 2.
          ...(spool !== undefined ? ({ stdout: spool } as unknown as { stdout: 1 }) : {}),
          reject: false,
          detached: true,
          env,
          extendEnv: true,
        });
        const stdout = spool === undefined ? (run.stdout ?? "") : readSpool(spool);
        // A hang-up or Ctrl-C sent to netpol's process group while it forks reaches the new
        // child too, before that leaves the group: blocked until the child has reset its
        // signals, it then kills it before the tool is executed. Once out of the group the tool
        // hears neither, so it never ran and runs again; netpol itself decides what the signal
        // means (cli/signals.ts).
        if (JOB_SIGNALS.has(run.signal ?? "") && attempt < SPAWN_RETRIES) continue;
        if (run.failed) throw failure(tool, args, options, run, stdout);
        return { stdout, stderr: run.stderr };
      }
    },
    start(tool, args) {
      spawned++;
      return spawnSession(["setpriv", ...argv(tool, args)], { ...process.env, ...env });
    },
    async session(tool, args, { signal, onLine }) {
      spawned++;
      const execa = await loadExeca();
      const child = execa("setpriv", argv(tool, args), {
        cancelSignal: signal,
        reject: false,
        buffer: { stdout: false },
        stdin: "ignore",
        detached: true,
        env,
        extendEnv: true,
      });
      let partial = "";
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) onLine(line);
      });
      const run = await child;
      if (run.failed && !signal.aborted) throw failure(tool, args, {}, run, "");
    },
  };
}
