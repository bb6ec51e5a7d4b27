import type { KernelState, ToolResult } from "./state.js";

/** A listening socket a test puts in the fake namespace (a process of the user's own). */
export interface FakeSocket {
  readonly proto: "tcp" | "udp";
  /** As ss prints it: `0.0.0.0`, `*`, `[::]`, `127.0.0.1`, `192.0.2.1%eth0`. */
  readonly local: string;
  readonly port: number;
  readonly process?: { readonly name: string; readonly pid: number };
}

const users = (p: FakeSocket["process"]) =>
  p ? ` users:(("${p.name}",pid=${p.pid},fd=${3 + (p.pid % 7)}))` : "";

function line(s: FakeSocket): string {
  const state = s.proto === "tcp" ? "LISTEN" : "UNCONN";
  const peer = s.local.startsWith("[") || s.local === "*" ? "*:*" : "0.0.0.0:*";
  return `${s.proto} ${state} 0      ${s.proto === "tcp" ? 4096 : 0}      ${s.local}:${s.port} ${peer}${users(s.process)}`;
}

/**
 * `ss -H -l -n -t -u -p`, the one form netpol runs: the sockets a test put here, and the UDP
 * port of each WireGuard interface (wireguard-go's process for a tun device; the kernel's own,
 * with no process, for an in-kernel one), both families, as the real ss lists them.
 */
export function ss(state: KernelState, args: readonly string[]): ToolResult {
  if (args.join(" ") !== "-H -l -n -t -u -p")
    return { stdout: "", stderr: `fake ss: unsupported ${args.join(" ")}\n`, exitCode: 1 };
  const wireguard = [...state.wireguard].flatMap(([name, dev]): FakeSocket[] => {
    const link = state.links.find((l) => l.name === name);
    if (!link || dev.listenPort === 0) return [];
    const process =
      link.kind === "tun" ? { name: "wireguard-go", pid: 1000 + link.index } : undefined;
    return ["0.0.0.0", "[::]"].map((local) => ({
      proto: "udp",
      local,
      port: dev.listenPort,
      ...(process ? { process } : {}),
    }));
  });
  const all = [...wireguard, ...state.sockets];
  const order = (s: FakeSocket) => (s.proto === "udp" ? 0 : 1);
  const lines = all.sort((a, b) => order(a) - order(b)).map(line);
  return { stdout: lines.map((l) => `${l}\n`).join(""), stderr: "", exitCode: 0 };
}
