import { randomBytes } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync, unlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { NetpolError } from "../errors.js";

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

/** Every system command netpol runs goes through one Runner, so tests can count and aim them. */
export interface Runner {
  readonly netns: string | undefined;
  run(tool: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** How many processes this runner has started. */
  readonly spawned: number;
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
 * Runs tools with argument arrays (never a shell). With a namespace, each command runs under
 * `ip netns exec NS`, so the caller's code is the same inside and outside one.
 */
export function createRunner(netns?: string): Runner {
  let spawned = 0;
  return {
    netns,
    get spawned() {
      return spawned;
    },
    async run(tool, args, options = {}) {
      const argv = netns ? ["ip", "netns", "exec", netns, tool, ...args] : [tool, ...args];
      spawned++;
      // A tool dies with netpol (parent-death signal): a killed apply leaves no `ip -batch`
      // running on behind the next one, which has taken its stale lock over.
      const spool = options.spool ? spoolFile() : undefined;
      const run = await execa("setpriv", ["--pdeathsig", "KILL", ...argv], {
        input: options.input ?? "",
        // execa hands any descriptor to spawn(2); its types name only 1 and 2.
        ...(spool !== undefined ? ({ stdout: spool } as unknown as { stdout: 1 }) : {}),
        reject: false,
        env: { LC_ALL: "C", PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
        extendEnv: true,
      });
      const stdout = spool === undefined ? (run.stdout ?? "") : readSpool(spool);
      if (run.failed) {
        if ((run as { code?: string }).code === "ENOENT") throw toolMissing("setpriv");
        if (/failed to execute|exec of .* failed: No such file/.test(run.stderr))
          throw toolMissing(tool);
        const said = `${run.stderr || stdout || run.shortMessage}`;
        throw toolFailed(tool, args, netns, options, run.exitCode, said);
      }
      return { stdout, stderr: run.stderr };
    },
  };
}
