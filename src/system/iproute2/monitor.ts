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
 * Calls `changed` once a burst of events has settled (`settleMs` without another: a device and
 * its addresses coming back is one change), until `signal` aborts; a monitor that stops is
 * started again. For a reader that only needs to know that something changed.
 */
export function followChanges(
  runner: Runner,
  changed: () => void,
  signal: AbortSignal,
  settleMs = 100,
): void {
  let settle: NodeJS.Timeout | undefined;
  const start = (): void => {
    if (signal.aborted) return;
    const session = startMonitor(runner, () => {
      clearTimeout(settle);
      settle = setTimeout(changed, settleMs);
    });
    const stop = () => session.stop();
    signal.addEventListener("abort", stop, { once: true });
    void session.exited.then(() => {
      signal.removeEventListener("abort", stop);
      if (!signal.aborted) setTimeout(start, 1000);
    });
  };
  signal.addEventListener("abort", () => clearTimeout(settle), { once: true });
  start();
}
