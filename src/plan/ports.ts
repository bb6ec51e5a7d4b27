import type { SiteState } from "../compile/desired.js";
import { parseAddress } from "../net/cidr.js";
import type { Listener } from "./live.js";
import type { LiveState } from "./types.js";

const WILDCARDS = new Set(["*", "0.0.0.0", "::", "::ffff:0.0.0.0"]);

/** An address only this host reaches (127.0.0.0/8, ::1, and 127.x written as IPv4 in IPv6). */
function isLoopback(address: string): boolean {
  const v4 = address.replace(/^::ffff:/i, "");
  return /^127\./.test(v4) || address === "::1";
}

/**
 * Whether a listener receives what arrives on the uplink for its port, so a DNAT of that port
 * takes its traffic: bound to every address (and device, or the uplink), or to an address the
 * uplink holds. One bound to loopback or to another device's address never saw it.
 */
function servesUplink(l: Listener, wan: string, wanAddresses: ReadonlySet<string>): boolean {
  if (l.device !== undefined && l.device !== wan) return false;
  if (WILDCARDS.has(l.address)) return true;
  if (isLoopback(l.address)) return false;
  const parsed = parseAddress(l.address.replace(/^::ffff:(\d+\.)/i, "$1"));
  return parsed.ok && wanAddresses.has(`${parsed.value.family}:${parsed.value.address}`);
}

/** `tcp/2222`-style keys of the ports netpol's live table publishes already. */
function publishedNow(live: LiveState): Set<string> {
  const keys = new Set<string>();
  for (const { list } of live.nft?.elements.values() ?? []) {
    for (const element of list) {
      const m = /^(tcp|udp) \. (\d+) :/.exec(element);
      if (m) keys.add(`${m[2]}/${m[1]}`);
    }
  }
  return keys;
}

const holderOf = (l: Listener) =>
  l.process
    ? `${l.process.name} (pid ${l.process.pid})`
    : "a socket of no process netpol can see (in-kernel, such as WireGuard, or hidden from it)";

/**
 * Ports the policy would newly publish that another listener of the site already serves on
 * the uplink: the DNAT would take its traffic (the user's Caddy on 443, sshd on 22, a
 * WireGuard tunnel on its UDP port), or the relay could not bind it; and the relay's loopback
 * port, where another program holds it. Pure. A port netpol publishes by DNAT already is not
 * refused again, so a listener that came later cannot stop the applies that keep the rest in
 * force; netpol's own relay is never the other program.
 */
export function portConflicts(desired: SiteState, live: LiveState): string[] {
  if (!live.listeners) return [];
  // netpol's own relay holds its ports already: never a clash with the policy that made it.
  const relayPid = live.relay?.pid;
  const others = live.listeners.filter(
    (l) => relayPid === undefined || l.process?.pid !== relayPid,
  );
  return [...uplinkConflicts(desired, live, others), ...relayPortConflict(desired, others)];
}

const whereOf = (l: Listener) =>
  `${l.address.includes(":") ? `[${l.address}]` : l.address}${l.device ? `%${l.device}` : ""}:${l.port}`;

function uplinkConflicts(
  desired: SiteState,
  live: LiveState,
  listeners: readonly Listener[],
): string[] {
  const published = desired.published;
  if (!published) return [];
  const { wan } = published;
  const wanAddresses = new Set(
    live.addresses.filter((a) => a.device === wan).map((a) => `${a.cidr.family}:${a.cidr.address}`),
  );
  const already = publishedNow(live);
  return published.ports.flatMap((p) => {
    const key = `${p.port}/${p.kind}`;
    if (already.has(key) && !p.relay) return [];
    const held = listeners.find(
      (l) => l.proto === p.kind && l.port === p.port && servesUplink(l, wan, wanAddresses),
    );
    if (!held) return [];
    return [
      `port ${key} is served here by ${holderOf(held)} on ${whereOf(held)}; publishing service ${p.service} there would take its traffic from ${wan}. Publish another port, or stop that listener first`,
    ];
  });
}

/** The loopback port Caddy hands HTTP services with `proxyProtocol` to, held by another. */
function relayPortConflict(desired: SiteState, listeners: readonly Listener[]): string[] {
  const port = desired.relay?.http?.port;
  if (port === undefined) return [];
  const held = listeners.find(
    (l) =>
      l.proto === "tcp" &&
      l.port === port &&
      (WILDCARDS.has(l.address) || l.address === "127.0.0.1"),
  );
  if (!held) return [];
  return [
    `port ${port}/tcp, the PROXY-protocol relay's (proxy.relayPort), is served here by ${holderOf(held)} on ${whereOf(held)}; set sites.${desired.site}.proxy.relayPort to a free port`,
  ];
}
