import { type Cidr, type Family, formatAddress, formatCidr } from "../net/cidr.js";
import { formatHostPort } from "../net/host-port.js";
import { type Intent, keepsClientAddress, type SiteIntent } from "../policy/intent.js";
import type { NftChain } from "./desired.js";

const IP: Record<Family, string> = { 4: "ip", 6: "ip6" };
const quote = (name: string) => JSON.stringify(name);
const hex = (n: number) => `0x${n.toString(16)}`;

function set(cidrs: readonly Cidr[]): string {
  const items = cidrs.map(formatCidr);
  return items.length === 1 ? (items[0] as string) : `{ ${items.join(", ")} }`;
}

function byFamily(cidrs: readonly Cidr[]): [Family, Cidr[]][] {
  return ([4, 6] as const)
    .map((f): [Family, Cidr[]] => [f, cidrs.filter((c) => c.family === f)])
    .filter(([, list]) => list.length > 0);
}

function deviceOn(site: SiteIntent, tunnel: string): string {
  return site.tunnels.find((t) => t.tunnel.name === tunnel)?.local.device ?? tunnel;
}

/** Masquerade for egress that asks for it, and on an exit site for what arrives from the tunnel. */
function postrouting(intent: Intent, site: SiteIntent): string[] {
  const rules: string[] = [];
  for (const e of site.egress) {
    if (!e.masquerade) continue;
    for (const [family, sources] of byFamily(e.sources)) {
      rules.push(
        `oifname ${quote(e.via.device)} ${IP[family]} saddr ${set(sources)} masquerade comment ${quote(`egress ${e.name}`)}`,
      );
    }
  }
  const exits = new Set(
    intent.sites.flatMap((s) =>
      s.egress.flatMap((e) =>
        e.via.kind === "tunnel" && e.via.exit === site.name ? [deviceOn(site, e.via.tunnel)] : [],
      ),
    ),
  );
  for (const device of [...exits].sort()) {
    rules.push(
      `iifname ${quote(device)} oifname ${quote(site.wan ?? "")} masquerade comment ${quote(`exit for ${device}`)}`,
    );
  }
  for (const s of intent.services) {
    if (s.kind === "http" || s.publishOn !== site.name || keepsClientAddress(s)) continue;
    const t = s.target;
    rules.push(
      // Matched on the port the client used, so a second service with the same target but
      // keeping client addresses is not masqueraded too.
      `oifname ${quote(t.via)} ct status dnat meta l4proto ${s.kind} ct original proto-dst ${s.port} ${IP[t.address.family]} daddr ${formatAddress(t.address)} masquerade comment ${quote(`service ${s.name}`)}`,
    );
  }
  return rules;
}

/** Published ports: the publishing site rewrites the destination to the target behind the tunnel. */
function prerouting(intent: Intent, site: SiteIntent): string[] {
  return intent.services.flatMap((s) => {
    if (s.kind === "http" || s.publishOn !== site.name) return [];
    const family = IP[s.target.address.family];
    return [
      `iifname ${quote(site.wan ?? "")} ${s.kind} dport ${s.port} dnat ${family} to ${formatHostPort(s.target.address, s.target.port)} comment ${quote(`service ${s.name}`)}`,
    ];
  });
}

/** Devices whose path MTU is below the LAN's: clamp MSS both ways (stalls over WireGuard otherwise). */
function clampedDevices(site: SiteIntent): string[] {
  const tunnels = site.tunnels.map((t) => t.local.device);
  const egress = site.egress.map((e) => e.via.device);
  return [...new Set([...tunnels, ...egress])].sort();
}

function clamp(devices: readonly string[]): string[] {
  return devices.flatMap((d) => [
    `oifname ${quote(d)} tcp flags syn tcp option maxseg size set rt mtu`,
    `iifname ${quote(d)} tcp flags syn tcp option maxseg size set rt mtu`,
  ]);
}

/**
 * Fail-closed guard in the forward path: traffic from an egress's sources that is not for an
 * `except` destination may only leave by the egress device. Routing already fails closed; this
 * catches what a stray route elsewhere would let through, and counts it.
 */
/**
 * From the uplink into a tunnel, only connections to published ports (DNAT) may start: the
 * home's networks are routed into the tunnel, and nothing else from the internet should be.
 */
function onlyPublished(site: SiteIntent): string[] {
  if (!site.wan) return [];
  return site.tunnels
    .map(({ local: { device: d } }) => d)
    .map(
      (d) =>
        `iifname ${quote(site.wan ?? "")} oifname ${quote(d)} ct state new ct status ! dnat counter drop comment ${quote(`unpublished into ${d}`)}`,
    );
}

function guard(site: SiteIntent): string[] {
  // Replies marked to go back into a tunnel (see replyMarks) are not leaks.
  const marks = site.replyPaths.map((r) => hex(r.mark));
  const notReply =
    marks.length === 0
      ? ""
      : ` ct mark != ${marks.length === 1 ? marks[0] : `{ ${marks.join(", ")} }`}`;
  return site.egress.flatMap((e) => {
    if (!e.failClosed) return [];
    return byFamily(e.sources).map(([family, sources]) => {
      const except = e.except.filter((x) => x.family === family);
      const notExcept = except.length > 0 ? ` ${IP[family]} daddr != ${set(except)}` : "";
      return `${IP[family]} saddr ${set(sources)}${notExcept}${notReply} oifname != ${quote(e.via.device)} counter drop comment ${quote(`fail-closed ${e.name}`)}`;
    });
  });
}

/** Connections that arrive through a tunnel unchanged are marked, and so are their replies. */
function replyMarks(site: SiteIntent): { prerouting: string[]; output: string[] } {
  return {
    prerouting: site.replyPaths.flatMap((r) => [
      `iifname ${quote(r.device)} ct state new ct mark set ${hex(r.mark)}`,
      `iifname != ${quote(r.device)} ct mark ${hex(r.mark)} meta mark set ct mark`,
    ]),
    output: site.replyPaths.map((r) => `ct mark ${hex(r.mark)} meta mark set ct mark`),
  };
}

export function compileNftables(intent: Intent, site: SiteIntent): NftChain[] {
  const marks = replyMarks(site);
  const chains: NftChain[] = [
    {
      name: "nat_prerouting",
      type: "nat",
      hook: "prerouting",
      priority: "dstnat",
      rules: prerouting(intent, site),
    },
    {
      name: "nat_postrouting",
      type: "nat",
      hook: "postrouting",
      priority: "srcnat",
      rules: postrouting(intent, site),
    },
    {
      name: "mangle_prerouting",
      type: "filter",
      hook: "prerouting",
      priority: "mangle",
      rules: marks.prerouting,
    },
    {
      name: "mangle_output",
      type: "route",
      hook: "output",
      priority: "mangle",
      rules: marks.output,
    },
    {
      name: "mangle_forward",
      type: "filter",
      hook: "forward",
      priority: "mangle",
      rules: clamp(clampedDevices(site)),
    },
    {
      name: "filter_forward",
      type: "filter",
      hook: "forward",
      priority: "filter",
      rules: [...guard(site), ...onlyPublished(site)],
    },
  ];
  return chains.filter((c) => c.rules.length > 0);
}
