import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { execa, type Result } from "execa";
import { controlSocketAnswers } from "../../src/lab/processes.js";

/**
 * Network namespaces and userspace WireGuard for tests. Everything a test creates here lives
 * inside a namespace of its own; nothing touches the machine's root namespace. Commands are
 * argument arrays, never shell strings.
 */

const IFNAME_MAX_BYTES = 15;

/** A short random suffix for namespace and interface names (6 hex characters). */
export function uniqueSuffix(): string {
  return randomBytes(3).toString("hex");
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface Netns {
  readonly name: string;
  /** Runs `ip netns exec NAME cmd...`; throws (with the command and its stderr) on failure. */
  exec(cmd: readonly string[], input?: string): Promise<ExecResult>;
  /** The same, but resolves with the exit code instead of throwing. */
  run(cmd: readonly string[], input?: string): Promise<ExecResult>;
  /** Stops every wireguard-go started in it, then deletes it. Safe to call twice. */
  destroy(): Promise<void>;
}

export interface WireguardGo {
  readonly ifname: string;
  readonly pid: number;
  /** Kills the process by its PID and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

/** wireguard-go processes per namespace, so destroy() can stop what a test forgot to. */
const daemons = new Map<string, Set<WireguardGo>>();

function plain(r: Result): ExecResult {
  return {
    stdout: String(r.stdout ?? ""),
    stderr: String(r.stderr ?? ""),
    exitCode: r.exitCode ?? -1,
  };
}

export async function createNetns(prefix: string): Promise<Netns> {
  const name = `${prefix}-${uniqueSuffix()}`;
  await execa("ip", ["netns", "add", name]);
  daemons.set(name, new Set());
  let destroyed = false;

  const run = async (cmd: readonly string[], input?: string) =>
    plain(
      await execa("ip", ["netns", "exec", name, ...cmd], {
        input: input ?? "",
        reject: false,
        env: { LC_ALL: "C" },
      }),
    );

  const ns: Netns = {
    name,
    run,
    async exec(cmd, input) {
      const r = await run(cmd, input);
      if (r.exitCode !== 0) {
        throw new Error(
          `in netns ${name}: \`${cmd.join(" ")}\` exited ${r.exitCode}\n${r.stderr}${r.stdout}`,
        );
      }
      return r;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      for (const wg of [...(daemons.get(name) ?? [])]) await wg.stop();
      daemons.delete(name);
      await execa("ip", ["netns", "delete", name]);
    },
  };
  await ns.exec(["ip", "link", "set", "dev", "lo", "up"]);
  return ns;
}

/**
 * Starts `wireguard-go IFNAME` inside `ns` in the foreground (WG_PROCESS_FOREGROUND=1: never an
 * empty string, which makes it fork itself endlessly) as our own child, so its PID is known.
 * `ip netns exec` execs the command in place, so the child's PID is wireguard-go's. Resolves
 * once the interface exists and its control socket answers `wg`.
 */
export async function startWireguardGo(ns: Netns, ifname: string): Promise<WireguardGo> {
  if (Buffer.byteLength(ifname) > IFNAME_MAX_BYTES) {
    throw new Error(`interface name ${ifname} is longer than ${IFNAME_MAX_BYTES} bytes`);
  }
  const child = execa("ip", ["netns", "exec", ns.name, "wireguard-go", ifname], {
    env: { WG_PROCESS_FOREGROUND: "1" },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    reject: false,
    // execa kills the child if the test process itself exits early.
    cleanup: true,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`wireguard-go ${ifname} did not start`);
  let exited: Result | undefined;
  const done = child.then((r) => {
    exited = r;
    return r;
  });

  let stopped = false;
  const handle: WireguardGo = {
    ifname,
    pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      daemons.get(ns.name)?.delete(handle);
      if (exited) return;
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      const timeout = sleep(5_000).then(() => "timeout" as const);
      if ((await Promise.race([done, timeout])) === "timeout") {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
        await done;
      }
    },
  };
  daemons.get(ns.name)?.add(handle);

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (exited) {
      await handle.stop();
      throw new Error(
        `wireguard-go ${ifname} in netns ${ns.name} exited with ${exited.exitCode}: ${String(exited.stderr)}`,
      );
    }
    const link = await ns.run(["ip", "link", "show", "dev", ifname]);
    if (link.exitCode === 0 && (await controlSocketAnswers(ifname))) return handle;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`wireguard-go ${ifname} in netns ${ns.name}: no interface after 10 s`);
    }
    await sleep(50);
  }
}
