import { IpBatchSession, printsOneLine } from "./iproute2/batch-session.js";
import type { Runner } from "./runner.js";
import type { WireguardControl } from "./wireguard-uapi.js";

/** A runner that keeps tools open, until `close`. */
export interface SessionRunner extends Runner {
  /** A device went: the ip processes that knew it by name are started anew when next needed. */
  forgetDevices(): void;
  /**
   * Stops the sessions for good: a request still on its way (a status read that outlived the
   * resident) runs as `inner` runs it, a process that ends with it, and WireGuard is no longer
   * reached through the control sockets (their owner closes them). A session opened after the
   * close would keep the process alive for ever.
   */
  close(): void;
}

/**
 * The runner a long-lived netpol process (the resident) works through: the same commands as
 * `inner` runs, but `ip -batch -` goes to an ip process kept open for those options (a read or a
 * change then costs no process), and WireGuard is reached through its control sockets. What
 * cannot go that way (`-force`, a batch that mixes shows and changes, every other tool) is run
 * by `inner` as ever.
 */
export function withSessions(inner: Runner, wireguard?: WireguardControl): SessionRunner {
  const sessions = new Map<string, IpBatchSession>();
  let closed = false;
  const sessionFor = (flags: readonly string[]) => {
    const key = flags.join(" ");
    let session = sessions.get(key);
    if (!session) {
      session = new IpBatchSession((args) => inner.start("ip", args), flags, inner.netns);
      sessions.set(key, session);
    }
    return session;
  };
  return {
    netns: inner.netns,
    get spawned() {
      return inner.spawned;
    },
    get wireguard() {
      return closed ? undefined : wireguard;
    },
    async run(tool, args, options = {}) {
      const flags = closed ? undefined : batchFlags(tool, args);
      const lines = (options.input ?? "").split("\n").filter((l) => l.trim() !== "");
      if (!flags || lines.length === 0 || mixed(lines)) return inner.run(tool, args, options);
      const json = flags.includes("-json") || flags.includes("-j") ? flags : [...flags, "-json"];
      const printed = await sessionFor(json).run(options.input ?? "", options);
      return { stdout: printed.join("\n"), stderr: "" };
    },
    start: (tool, args, options) => inner.start(tool, args, options),
    session: (tool, args, options) => inner.session(tool, args, options),
    forgetDevices() {
      for (const s of sessions.values()) s.forgetDevices();
    },
    close() {
      closed = true;
      for (const s of sessions.values()) s.stop();
      sessions.clear();
    },
  };
}

/** ip's options before `-batch -`, when the command is a batch a session can take. */
function batchFlags(tool: string, args: readonly string[]): string[] | undefined {
  if (tool !== "ip" || args.length < 2) return undefined;
  if (args.at(-2) !== "-batch" || args.at(-1) !== "-") return undefined;
  const flags = args.slice(0, -2);
  // With -force a batch goes on past a failing line, and only its exit status says one failed.
  return flags.every((f) => f.startsWith("-") && f !== "-force") ? flags : undefined;
}

function mixed(lines: readonly string[]): boolean {
  const shows = lines.filter(printsOneLine).length;
  return shows !== 0 && shows !== lines.length;
}
