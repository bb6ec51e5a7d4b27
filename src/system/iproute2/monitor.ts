import type { Runner } from "../runner.js";
import type { Session } from "../session.js";

/**
 * What `ip -o monitor link address route rule` reports, one event per line. Links are read in
 * full (a resident reacts to a device coming up from the event itself); of addresses, routes
 * and rules only that one changed: the kernel does not report every route it drops with a
 * device (IPv4 flushes them silently), so what they are is read again rather than followed.
 */
export type NetlinkEvent =
  | { readonly kind: "link"; readonly name: string; readonly up: boolean; readonly gone: boolean }
  | { readonly kind: "address" | "route" | "rule"; readonly gone: boolean };

// `3: d0@d1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 …`; "Deleted " before a removed one.
const LINK = /^(Deleted )?\d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)>/;
// `3: d0    inet 10.9.0.1/24 scope global d0\ …`
const ADDRESS = /^(Deleted )?\d+: \S+\s+inet6? /;
// `201:\tfrom all fwmark 0x2000000/0xfe000000 lookup 3 proto 77`
const RULE = /^(Deleted )?\d+:\t/;

export function parseMonitorLine(line: string): NetlinkEvent | undefined {
  if (line.trim() === "") return undefined;
  const link = LINK.exec(line);
  if (link) {
    const flags = (link[3] ?? "").split(",");
    return { kind: "link", name: link[2] ?? "", up: flags.includes("UP"), gone: !!link[1] };
  }
  const gone = line.startsWith("Deleted ");
  if (ADDRESS.test(line)) return { kind: "address", gone };
  if (RULE.test(line)) return { kind: "rule", gone };
  return { kind: "route", gone };
}

/** `ip -o monitor` in the runner's namespace, each line it prints handed on as an event. */
export function startMonitor(runner: Runner, onEvent: (event: NetlinkEvent) => void): Session {
  const session = runner.start("ip", ["-o", "monitor", "link", "address", "route", "rule"], {
    step: "watching links",
  });
  session.onLine((line) => {
    const event = parseMonitorLine(line);
    if (event) onEvent(event);
  });
  return session;
}

/**
 * `ip -o monitor link` for as long as `signal` allows: `changed` is called for each line, one
 * per link that appeared, changed or went. It runs through the runner like every other command
 * (in the namespace, dying with netpol). Ends when the monitor exits; a monitor that fails
 * (no such namespace) is an error.
 */
export function monitorLinks(
  runner: Runner,
  changed: () => void,
  signal: AbortSignal,
): Promise<void> {
  return runner.session("ip", ["-o", "monitor", "link"], { signal, onLine: changed });
}
