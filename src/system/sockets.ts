import type { Listener } from "../plan/live.js";
import type { Runner } from "./runner.js";

/**
 * `ss -H -l -n -t -u -p` → the namespace's listening sockets. A line is `NETID STATE RECV-Q
 * SEND-Q LOCAL PEER [users:(("NAME",pid=N,fd=F),...)]`; LOCAL is `ADDR[%DEV]:PORT`, the address
 * `*`, `0.0.0.0`, `[::]`, `127.0.0.1`, `[::ffff:192.0.2.1]`...
 */
export function parseListeners(stdout: string): Listener[] {
  return stdout.split("\n").flatMap((line): Listener[] => {
    const [proto, , , , local] = line.trim().split(/\s+/);
    if ((proto !== "tcp" && proto !== "udp") || local === undefined) return [];
    const m = /^(.*):(\d+)$/.exec(local);
    if (!m) return [];
    const [bound = "", device] = (m[1] ?? "").split("%");
    const user = /users:\(\("((?:[^"\\]|\\.)*)",pid=(\d+)/.exec(line);
    return [
      {
        proto,
        address: bound.replace(/^\[(.*)\]$/, "$1"),
        port: Number(m[2]),
        ...(device ? { device } : {}),
        ...(user ? { process: { name: user[1] ?? "", pid: Number(user[2]) } } : {}),
      },
    ];
  });
}

/** The namespace's listening TCP and UDP sockets, with the processes holding them: one process. */
export async function readListeners(runner: Runner): Promise<Listener[]> {
  const r = await runner.run("ss", ["-H", "-l", "-n", "-t", "-u", "-p"], {
    step: "reading listening sockets",
  });
  return parseListeners(r.stdout);
}
