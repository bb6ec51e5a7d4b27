import { spawn } from "node:child_process";

/** How a command ended: what execa gave the Runner, from Node's own child_process. */
export interface Exited {
  readonly stdout: string;
  readonly stderr: string;
  /** undefined when a signal ended it or it never started. */
  readonly exitCode: number | undefined;
  readonly failed: boolean;
  /** The spawn error's code (ENOENT: the program is not there). */
  readonly code?: string;
  readonly shortMessage: string;
}

export interface ExecOptions {
  readonly input?: string;
  /** A descriptor the tool's stdout goes to instead of a pipe (then `stdout` is ""). */
  readonly stdoutFd?: number;
  readonly env: NodeJS.ProcessEnv;
  /** Stops the tool (SIGTERM); it then ends as failed, as any signal's end. */
  readonly signal?: AbortSignal;
  /** Each chunk of stdout as it comes, instead of collecting it. */
  readonly onStdout?: (chunk: string) => void;
}

/** A tool's answer without its final newline, as a shell's `$(…)` and execa give it. */
const trimNewline = (text: string) => text.replace(/\r?\n$/, "");

/**
 * Runs `command` with `args` (never a shell), to its end. Node's own child_process rather than
 * execa: execa and the modules it brings cost a resident process (the fleet agent) some 9 MB of
 * memory for what the Runner uses of it: an input, a descriptor, an exit code.
 */
export function exec(
  command: string,
  args: readonly string[],
  options: ExecOptions,
): Promise<Exited> {
  return new Promise((settle) => {
    const child = spawn(command, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", options.stdoutFd ?? "pipe", "pipe"],
      env: options.env,
      ...(options.signal ? { signal: options.signal, killSignal: "SIGTERM" as const } : {}),
    });
    const out: string[] = [];
    const err: string[] = [];
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      if (options.onStdout) options.onStdout(chunk);
      else out.push(chunk);
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => err.push(chunk));
    // A tool that exits before reading all its input: what is left is dropped, not thrown.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(options.input);
    let spawnError: NodeJS.ErrnoException | undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      spawnError ??= e;
    });
    child.on("close", (exitCode, signal) => {
      const failed = exitCode !== 0 || spawnError !== undefined;
      const shortMessage = spawnError
        ? `Command failed: ${spawnError.message}`
        : signal
          ? `Command was killed with ${signal}: ${command}`
          : `Command failed with exit code ${exitCode}: ${command}`;
      settle({
        stdout: trimNewline(out.join("")),
        stderr: trimNewline(err.join("")),
        exitCode: exitCode ?? undefined,
        failed,
        ...(spawnError?.code ? { code: spawnError.code } : {}),
        shortMessage,
      });
    });
  });
}
