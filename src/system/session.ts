import { spawn } from "node:child_process";

/**
 * A tool that runs on beside netpol instead of once per command: `ip monitor`, which reports
 * the kernel's changes as they happen, and `ip -batch -` on a pipe, which takes command lines
 * for as long as it runs. Started through the Runner (`Runner.start`), so it runs in the
 * target's namespace, dies with netpol and is counted like any other process.
 */
export interface Session {
  /** Hands the tool input on its stdin. */
  write(text: string): void;
  /** Called with each line the tool writes to stdout, without its newline. */
  onLine(listener: (line: string) => void): void;
  /** Called with each line the tool writes to stderr, without its newline. */
  onErrorLine(listener: (line: string) => void): void;
  /** Settles once the tool has exited, with its exit code (undefined when a signal ended it). */
  readonly exited: Promise<number | undefined>;
  /** Stops the tool (SIGTERM) if it still runs; `exited` settles after. */
  stop(): void;
}

/**
 * Splits a stream of text into lines, holding a line's start until its newline comes. Only
 * each new chunk is searched: a listing of 10,000 routes is one line of megabytes.
 */
export function lineSplitter(each: (line: string) => void): (chunk: string) => void {
  let held: string[] = [];
  return (chunk) => {
    let from = 0;
    for (let nl = chunk.indexOf("\n"); nl !== -1; nl = chunk.indexOf("\n", from)) {
      const tail = chunk.slice(from, nl);
      each(held.length > 0 ? held.join("") + tail : tail);
      held = [];
      from = nl + 1;
    }
    if (from < chunk.length) held.push(chunk.slice(from));
  };
}

/** A session on a real process: argv[0] started with argv's rest, stdin, stdout and stderr piped. */
export function spawnSession(argv: readonly string[], env: NodeJS.ProcessEnv): Session {
  const [command = "", ...args] = argv;
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env, detached: true });
  const out: ((line: string) => void)[] = [];
  const err: ((line: string) => void)[] = [];
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  const each = (listeners: ((line: string) => void)[]) => (line: string) => {
    for (const f of listeners) f(line);
  };
  child.stdout.on("data", lineSplitter(each(out)));
  child.stderr.on("data", lineSplitter(each(err)));
  // A tool that has exited no longer reads: what is written then is dropped, not thrown.
  child.stdin.on("error", () => undefined);
  const exited = new Promise<number | undefined>((settle) => {
    child.on("error", (e) => {
      each(err)(e.message);
      settle(undefined);
    });
    child.on("close", (code) => settle(code ?? undefined));
  });
  return {
    write: (text) => {
      if (child.stdin.writable) child.stdin.write(text);
    },
    onLine: (listener) => out.push(listener),
    onErrorLine: (listener) => err.push(listener),
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
  };
}
