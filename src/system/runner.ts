import { execa } from "execa";
import { NetpolError } from "../errors.js";

export interface RunOptions {
  /** Written to the tool's stdin (configs with keys go here, never into argv). */
  readonly input?: string;
  /** The apply step this command belongs to, for the error message. */
  readonly step?: string;
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
      const result = await execa("setpriv", ["--pdeathsig", "KILL", ...argv], {
        input: options.input ?? "",
        reject: false,
        env: { LC_ALL: "C", PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
        extendEnv: true,
      });
      if (result.failed) {
        const missing = /failed to execute|exec of .* failed: No such file/.test(result.stderr);
        const where = options.step ? ` during ${options.step}` : "";
        const said = redact(`${result.stderr || result.stdout || result.shortMessage}`.trim());
        const command = commandLine(tool, args);
        throw new NetpolError(
          missing ? "NETPOL_E_TOOL_MISSING" : "NETPOL_E_TOOL_FAILED",
          missing
            ? `${tool} is not installed; run deploy/install-deps.sh (or apt-get install it)`
            : `\`${command}\`${netns ? ` in netns ${netns}` : ""} failed${where} (exit ${result.exitCode}): ${said}`,
          [],
          {
            details: {
              command,
              ...(options.step ? { step: options.step } : {}),
              ...(netns ? { netns } : {}),
              ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
              stderr: redact(String(result.stderr ?? "")),
            },
          },
        );
      }
      return { stdout: result.stdout, stderr: result.stderr };
    },
  };
}
