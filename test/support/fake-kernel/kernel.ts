import { PROBE_SCRIPT } from "../../../src/system/probe.js";
import { type Runner, toolFailed, toolMissing } from "../../../src/system/runner.js";
import { ip } from "./ip.js";
import { type KernelFeatures, THIS_MACHINE } from "./links.js";
import { nft } from "./nft.js";
import { batchSession, FakeSession, monitorLines, type Routing, routingOf } from "./sessions.js";
import { ss } from "./ss.js";
import { type KernelState, PROTO, TABLE, type ToolResult } from "./state.js";
import { deviceSysctls, GLOBAL_SYSCTLS, sysctl } from "./sysctl.js";
import { wg, wireguardGo } from "./wg.js";

/** What a new network namespace holds: a down lo and the kernel's default rules. */
function freshNamespace(): KernelState {
  const state: KernelState = {
    nextIndex: 2,
    links: [{ index: 1, name: "lo", kind: undefined, up: false, mtu: 65536 }],
    addresses: [
      { device: "lo", cidr: { family: 4, address: 0x7f000001n, prefix: 8 } },
      { device: "lo", cidr: { family: 6, address: 1n, prefix: 128 } },
    ],
    routes: [],
    rules: [
      ...([4, 6] as const).flatMap((family) =>
        [
          [0, TABLE.local],
          [32766, TABLE.main],
          ...(family === 4 ? [[32767, TABLE.default]] : []),
        ].map(([priority, table]) => ({
          family,
          priority: priority as number,
          table: table as number,
          protocol: PROTO.kernel,
        })),
      ),
    ],
    nft: [],
    wireguard: new Map(),
    sysctls: new Map(GLOBAL_SYSCTLS),
    listening: new Set(),
    sockets: [],
  };
  deviceSysctls(state, "lo");
  return state;
}

/** The tools whose commands can change what `ip monitor` watches. */
const CHANGES_ROUTING = new Set(["ip", "wireguard-go"]);

/** Each link as `ip -o monitor link` prints it, by index: what a monitor compares. */
function linkLines(state: KernelState): Map<number, string> {
  return new Map(
    state.links.map((l) => [
      l.index,
      `${l.index}: ${l.name}: <${l.up ? "UP,LOWER_UP" : ""}> mtu ${l.mtu}${l.master ? ` master ${l.master}` : ""}`,
    ]),
  );
}

/**
 * A network namespace in memory that answers ip, nft, wg, wireguard-go, sysctl, ss and status's probe the way
 * the real tools do, errors included. Each command sees the state the previous one left; a
 * failing command leaves it as it was.
 */
export class FakeKernel {
  state: KernelState = freshNamespace();
  /** Sessions of `ip -o monitor link`: each gets a line per link that appeared, changed or went. */
  private readonly monitors = new Set<(line: string) => void>();
  /** Sessions of `ip -o monitor link address route rule` (started): told of every change. */
  private readonly fullMonitors = new Set<FakeSession>();

  constructor(readonly features: KernelFeatures = THIS_MACHINE) {}

  /** Runs one tool; unknown tools answer undefined, as a missing binary would. */
  exec(tool: string, args: readonly string[], input = ""): ToolResult | undefined {
    // Only ip and wireguard-go change links, addresses, routes or rules: the others' commands
    // have nothing for a monitor. ip changes the state as a copy, so the state before it is
    // still whole afterwards, and a command that changed nothing (a show) left the same object.
    if ((this.monitors.size === 0 && this.fullMonitors.size === 0) || !CHANGES_ROUTING.has(tool))
      return this.answer(tool, args, input);
    const copied = tool === "ip";
    const was = this.state;
    const before = copied ? undefined : linkLines(was);
    const routing = copied ? was : this.fullMonitors.size > 0 ? routingOf(was) : undefined;
    const result = this.answer(tool, args, input);
    if (copied && this.state === was) return result;
    this.#tell(before ?? linkLines(was), routing);
    return result;
  }

  /** Tells the monitors what changed since `before` (link lines) and `routing` (full ones). */
  #tell(before: Map<number, string>, routing: Routing | undefined): void {
    const after = linkLines(this.state);
    for (const [index, line] of after)
      if (before.get(index) !== line) for (const m of this.monitors) m(line);
    for (const [index, line] of before)
      if (!after.has(index)) for (const m of this.monitors) m(`Deleted ${line}`);
    const lines = routing && this.fullMonitors.size > 0 ? monitorLines(routing, this.state) : [];
    if (lines.length > 0) for (const m of this.fullMonitors) m.print(`${lines.join("\n")}\n`);
  }

  /**
   * A tool that runs on and takes input: `ip -o monitor …` (every change) or `ip [options]
   * -batch -`. Anything else exits at once with nothing said, as a tool the fake does not know.
   */
  startSession(tool: string, args: readonly string[]): FakeSession {
    if (tool === "ip" && args.includes("monitor")) {
      const session: FakeSession = new FakeSession(undefined, () =>
        this.fullMonitors.delete(session),
      );
      this.fullMonitors.add(session);
      return session;
    }
    const batch = args.indexOf("-batch");
    if (tool === "ip" && batch >= 0 && args[batch + 1] === "-") {
      return batchSession(
        (line) => this.exec("ip", args, line) ?? { stdout: "", stderr: "", exitCode: 127 },
        args.includes("-force"),
      );
    }
    const session = new FakeSession();
    session.exit(127);
    return session;
  }

  private answer(tool: string, args: readonly string[], input: string): ToolResult | undefined {
    switch (tool) {
      case "ip": {
        const holder = {
          current: this.state,
          clone: () => structuredClone(holder.current),
        };
        const result = ip(holder, this.features, args, input);
        this.state = holder.current;
        return result;
      }
      case "nft":
        return nft(this.state, args, input);
      case "wg":
        return wg(this.state, args);
      case "wireguard-go":
        return wireguardGo(this.state, args);
      case "sysctl":
        return sysctl(this.state, args);
      case "ss":
        return ss(this.state, args);
      case process.execPath: {
        // status's probe: "host port" lines in, whether each is listening out.
        if (args[0] !== "-e" || args[1] !== PROBE_SCRIPT) return undefined;
        const targets = input.split("\n").filter(Boolean);
        const open = targets.map((t) => this.state.listening.has(t.replace(" ", ":")));
        return { stdout: JSON.stringify(open), stderr: "", exitCode: 0 };
      }
      default:
        return undefined;
    }
  }

  /** Like `exec`, but throws with the tool's message when it fails: for setting up a test. */
  must(tool: string, args: readonly string[], input = ""): string {
    const r = this.exec(tool, args, input);
    if (r === undefined) throw new Error(`fake kernel: no tool ${tool}`);
    if (r.exitCode !== 0)
      throw new Error(
        `fake kernel: \`${tool} ${args.join(" ")}\` exited ${r.exitCode}: ${r.stderr}`,
      );
    return r.stdout;
  }

  /** A veth whose other end is in another namespace, like the lab's wires: up, with carrier. */
  plug(name: string, ...addresses: string[]): void {
    this.state.links.push({
      index: this.state.nextIndex++,
      name,
      kind: "veth",
      up: false,
      mtu: 1500,
    });
    deviceSysctls(this.state, name);
    this.must(
      "ip",
      ["-batch", "-"],
      [`link set dev ${name} up`, ...addresses.map((a) => `address add ${a} dev ${name}`)].join(
        "\n",
      ),
    );
  }

  /** A Runner on this kernel: what netpol's code gets instead of `createRunner(netns)`. */
  runner(netns = "fake"): Runner {
    let spawned = 0;
    // execa, behind the real Runner, drops the one newline a tool's output ends with.
    const trim = (text: string) => text.replace(/\n$/, "");
    return {
      netns,
      get spawned() {
        return spawned;
      },
      run: async (tool, args, options = {}) => {
        spawned++;
        const r = this.exec(tool, args, options.input ?? "");
        if (r === undefined) throw toolMissing(tool);
        if (r.exitCode !== 0)
          throw toolFailed(tool, args, netns, options, r.exitCode, r.stderr || r.stdout);
        return { stdout: trim(r.stdout), stderr: trim(r.stderr) };
      },
      start: (tool, args) => {
        spawned++;
        return this.startSession(tool, args);
      },
      session: async (tool, args, { signal, onLine }) => {
        spawned++;
        if (tool !== "ip" || args.join(" ") !== "-o monitor link")
          throw toolFailed(tool, args, netns, {}, 1, "fake kernel: no such session");
        if (signal.aborted) return;
        this.monitors.add(onLine);
        await new Promise<void>((ended) => signal.addEventListener("abort", () => ended()));
        this.monitors.delete(onLine);
      },
    };
  }
}
