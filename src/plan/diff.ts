import type { RouteSpec, SiteState, WireguardSpec } from "../compile/desired.js";
import { sysctlDevice } from "../compile/sysctl.js";
import { formatCidr } from "../net/cidr.js";
import { formatEndpoint } from "../net/host-port.js";
import { routeArgs } from "../render/ip.js";
import { nftFingerprint, renderNftables } from "../render/nftables.js";
import { addressKey, routeKey, ruleKey, sameSet } from "./keys.js";
import type { WgLive } from "./live.js";
import { elementDetails, elementScript, ruleDetails } from "./nft-changes.js";
import { type NftTable, sameElements } from "./nft-table.js";
import { portConflicts } from "./ports.js";
import { proxyPlan } from "./proxy.js";
import { relayPlan } from "./relay.js";
import { settleSlots } from "./slots.js";
import type { Change, LiveState, Ownership, Plan } from "./types.js";
import { narrowed } from "./wg-made.js";

function missingFrom<T>(wanted: readonly T[], have: readonly T[], key: (t: T) => string): T[] {
  const present = new Set(have.map(key));
  return wanted.filter((w) => !present.has(key(w)));
}

/** Links that count as WireGuard: the kernel's, or wireguard-go's tun device. */
const WG_KINDS = new Set(["wireguard", "tun"]);

function linkChanges(desired: SiteState, live: LiveState, owned: Ownership) {
  const changes: Change[] = [];
  const conflicts: string[] = [];
  /** WireGuard interfaces of the policy's names that another tool made: never configured. */
  const foreignTunnels = new Set<string>();
  const byName = new Map(live.links.map((l) => [l.name, l]));
  for (const link of desired.links) {
    const found = byName.get(link.name);
    if (!found) {
      changes.push({ kind: "link", op: "add", link });
      continue;
    }
    const fits =
      link.kind === "wireguard" ? WG_KINDS.has(found.kind ?? "") : found.kind === link.kind;
    const ours = owned.links.includes(link.name);
    if (!fits && !ours) {
      conflicts.push(
        `device ${link.name} exists as ${found.kind ?? "a plain device"}, not ${link.kind}; netpol does not replace devices it did not create`,
      );
      continue;
    }
    // A tunnel's key, port and peers are its owner's: configuring it would take it over.
    if (link.kind === "wireguard" && !ours) {
      foreignTunnels.add(link.name);
      conflicts.push(
        `WireGuard interface ${link.name} exists but netpol did not create it (it has no netpol mark: a wg-quick tunnel, or a wireguard-go someone else started); netpol does not take over its key, port and peers: give the tunnel member another \`interface:\` in the policy, or remove that interface (\`ip link del ${link.name}\`) if it is no longer used`,
      );
      continue;
    }
    const mtu = link.kind === "wireguard" && found.mtu !== link.mtu ? link.mtu : undefined;
    if (!found.up || mtu !== undefined)
      changes.push({ kind: "link", op: "set", name: link.name, ...(mtu ? { mtu } : {}) });
  }
  for (const port of desired.ports) {
    if (byName.get(port.device)?.master !== port.master)
      changes.push({ kind: "port", op: "add", port });
  }
  const wanted = new Set(desired.links.map((l) => l.name));
  const removed = owned.links.filter((name) => byName.has(name) && !wanted.has(name));
  return { changes, conflicts, removed, foreignTunnels };
}

function wireguardReasons(whole: WireguardSpec, wholeLive: WgLive | undefined): string[] {
  if (!wholeLive) return ["configure a new interface"];
  const { spec, live } = narrowed(whole, wholeLive);
  const reasons: string[] = [];
  if (live.publicKey !== spec.publicKey) reasons.push("private key differs from the policy's");
  if (spec.listenPort !== undefined && live.listenPort !== spec.listenPort) {
    reasons.push(`listen port ${live.listenPort} → ${spec.listenPort}`);
  }
  const livePeers = new Map(live.peers.map((p) => [p.publicKey, p]));
  for (const peer of spec.peers) {
    const have = livePeers.get(peer.publicKey);
    if (!have) {
      reasons.push(`add peer ${peer.site}`);
      continue;
    }
    const want = peer.allowedIps.map(formatCidr);
    if (!sameSet(have.allowedIps, want))
      reasons.push(`peer ${peer.site} allowed IPs → ${want.sort().join(",")}`);
    if (peer.keepalive !== have.keepalive)
      reasons.push(`peer ${peer.site} keepalive → ${peer.keepalive ?? "off"}`);
    // A name resolves to an address wg shows instead; only addresses can be compared.
    const endpoint =
      peer.endpoint?.address !== undefined ? formatEndpoint(peer.endpoint) : undefined;
    if (endpoint !== undefined && have.endpoint !== endpoint)
      reasons.push(`peer ${peer.site} endpoint → ${endpoint}`);
  }
  const named = new Set(spec.peers.map((p) => p.publicKey));
  for (const key of livePeers.keys()) {
    if (!named.has(key)) reasons.push("remove a peer the policy does not name");
  }
  return reasons;
}

/** Whether a device a route or address needs is absent or down, and netpol does not make it. */
function absentDevices(live: LiveState, desired: SiteState): (device: string) => boolean {
  const made = new Set(desired.links.map((l) => l.name));
  const up = new Set(live.links.filter((l) => l.up).map((l) => l.name));
  return (device) => !made.has(device) && !up.has(device);
}

/**
 * netpol's table is replaced whole (one `nft -f` transaction) when its rules, its skeleton or
 * its elements are not the policy's.
 */
function nftChanges(
  desired: SiteState,
  table: NftTable | undefined,
  owned: Ownership,
  inForce: (() => SiteState | undefined) | undefined,
): Change[] {
  const text = renderNftables(desired);
  const wanted = nftFingerprint(text);
  const replace = (reason: string, details: readonly string[] = []): Change[] => [
    { kind: "nft", op: "replace", text, reason, ...(details.length > 0 ? { details } : {}) },
  ];
  if (wanted === undefined)
    return table
      ? [{ kind: "nft", op: "remove", text, reason: "the policy needs no nftables rules" }]
      : [];
  if (!table) return replace("table absent");
  if (table.fingerprint !== wanted) {
    // The table in force carries the fingerprint of the render it was loaded from: the policy
    // in force's, unless someone else loaded it. Only then are its rules known in netpol's form.
    const before = inForce?.();
    const was = before ? renderNftables(before) : undefined;
    const rules = was !== undefined && nftFingerprint(was) === table.fingerprint;
    return replace("rules differ", [
      ...(rules ? ruleDetails(was, text) : []),
      ...elementDetails(desired.nftSets, table),
    ]);
  }
  if (owned.nftSkeleton !== undefined && table.skeleton !== owned.nftSkeleton)
    return replace("edited by hand since the last apply");
  if (sameElements(desired.nftSets, table)) return [];
  const details = elementDetails(desired.nftSets, table);
  // Element commands only where the table is known to hold the policy's rules as netpol wrote them.
  const elements =
    owned.nftSkeleton !== undefined ? elementScript(desired.nftSets, table) : undefined;
  if (elements === undefined) return replace("set elements differ", details);
  return [
    {
      kind: "nft",
      op: "replace",
      text,
      reason: "set elements differ",
      ...(details.length > 0 ? { details } : {}),
      elements,
    },
  ];
}

/**
 * Routes another program put in main through an egress device (OpenVPN pushes `0.0.0.0/1` and
 * `128.0.0.0/1` with `redirect-gateway`): the whole site then leaves by that device, not only
 * the egress's networks, and nothing netpol owns is wrong. Named with the fix.
 */
function pushedRoutes(desired: SiteState, live: LiveState): string[] {
  const egressDevices = new Set(
    desired.routes.flatMap((r) =>
      r.type === "unicast" && r.table !== "main"
        ? [r.device, ...(r.choices ?? []).map((c) => c.device)]
        : [],
    ),
  );
  return (live.catchAll ?? [])
    .filter((r) => egressDevices.has(r.device))
    .map(
      (r) =>
        `route ${r.dst} dev ${r.device} in main is not netpol's: it sends the whole site's traffic by egress device ${r.device}, not only its egress's networks; an OpenVPN client pushed it (redirect-gateway): add route-noexec to its config, then \`ip route del ${r.dst} dev ${r.device}\``,
    );
}

/**
 * Desired state vs live state → ordered changes. Pure. Removes only what netpol owns: routes
 * and rules with its protocol number, links and addresses in its ownership record, its own
 * nftables table.
 */
export function diff(
  compiled: SiteState,
  live: LiveState,
  owned: Ownership,
  /** The state of the policy in force, asked only to name the rules a change of them touches. */
  inForce?: () => SiteState | undefined,
): Plan {
  const desired = settleSlots(compiled, live);
  const links = linkChanges(desired, live, owned);
  const absentDevice = absentDevices(live, desired);
  const waiting: string[] = [];
  const deviceOf = (r: RouteSpec) => (r.type === "unicast" ? r.device : undefined);
  const routes = desired.routes.filter((r) => {
    const dev = deviceOf(r);
    if (dev === undefined || !absentDevice(dev)) return true;
    waiting.push(
      `route ${routeArgs("add", r, desired.protocol).slice(2).join(" ")} (device ${dev} is absent or down)`,
    );
    return false;
  });
  const addresses = desired.addresses.filter((a) => {
    if (!absentDevice(a.device)) return true;
    waiting.push(`address ${formatCidr(a.cidr)} on ${a.device} (device is absent or down)`);
    return false;
  });

  const conflicts = [...links.conflicts, ...portConflicts(desired, live)];
  const ourTables = new Set(desired.routes.map((r) => r.table).filter((t) => t !== "main"));
  for (const t of new Set(live.routes.foreign)) {
    if (ourTables.has(t))
      conflicts.push(`routing table ${t} holds routes netpol did not make; pick another table id`);
  }
  const ourPriorities = new Set(desired.rules.map((r) => r.priority));
  for (const p of new Set(live.rules.foreign)) {
    if (ourPriorities.has(p))
      conflicts.push(
        `rule priority ${p} is used by a rule netpol did not make; pick another priority`,
      );
  }

  // A device's key waits while the device is absent and netpol does not make it (an external
  // egress device brought up later): `default`, set beside it, gives it the value when it comes.
  const present = new Set([...live.links.map((l) => l.name), ...desired.links.map((l) => l.name)]);
  const sysctls: Change[] = desired.sysctls
    .filter(([key, value]) => live.sysctls.get(key) !== value)
    .filter(([key]) => {
      const device = sysctlDevice(key);
      return device === undefined || present.has(device);
    })
    .map(([key, to]) => {
      const from = live.sysctls.get(key);
      return { kind: "sysctl", op: "set", key, to, ...(from !== undefined ? { from } : {}) };
    });
  // A sysctl netpol changed and no longer needs gets its old value back, unless someone has
  // changed it since.
  for (const s of owned.sysctls ?? []) {
    if (desired.sysctls.some(([key]) => key === s.key)) continue;
    if (live.sysctls.get(s.key) === s.value && s.value !== s.original)
      sysctls.push({ kind: "sysctl", op: "set", key: s.key, from: s.value, to: s.original });
  }

  const liveAddresses = new Set(live.addresses.map(addressKey));
  const ownedAddresses = owned.addresses.filter((a) => liveAddresses.has(addressKey(a)));
  const removes: Change[] = [
    ...missingFrom(ownedAddresses, desired.addresses, addressKey).map(
      (address) => ({ kind: "address", op: "remove", address }) as const,
    ),
    ...missingFrom(live.routes.owned, routes, routeKey).map(
      (route) => ({ kind: "route", op: "remove", route }) as const,
    ),
    ...missingFrom(live.rules.owned, desired.rules, ruleKey).map(
      (rule) => ({ kind: "rule", op: "remove", rule }) as const,
    ),
  ];
  const adds: Change[] = [
    ...missingFrom(addresses, live.addresses, addressKey).map(
      (address) => ({ kind: "address", op: "add", address }) as const,
    ),
    ...missingFrom(routes, live.routes.owned, routeKey).map(
      (route) => ({ kind: "route", op: "add", route }) as const,
    ),
    ...missingFrom(desired.rules, live.rules.owned, ruleKey).map(
      (rule) => ({ kind: "rule", op: "add", rule }) as const,
    ),
  ];

  const nft = nftChanges(desired, live.nft, owned, inForce);

  const liveWireguard = new Map(live.wireguard.map((w) => [w.name, w]));
  const wireguard: Change[] = desired.wireguard.flatMap((spec) => {
    if (links.foreignTunnels.has(spec.name)) return [];
    const reasons = wireguardReasons(spec, liveWireguard.get(spec.name));
    return reasons.length > 0 ? [{ kind: "wireguard", op: "sync", spec, reasons } as const] : [];
  });

  const proxy = proxyPlan(desired.proxy, live.proxy);
  const relay = relayPlan(desired, live.relay);
  return {
    site: desired.site,
    protocol: desired.protocol,
    changes: [
      ...links.changes,
      ...sysctls,
      ...removes,
      ...adds,
      ...nft,
      ...wireguard,
      ...links.removed.map((name) => ({ kind: "link", op: "remove", name }) as const),
      ...relay.changes,
      ...proxy.changes,
    ],
    waiting: [...waiting, ...proxy.waiting],
    conflicts: [...conflicts, ...proxy.conflicts],
    warnings: pushedRoutes(desired, live),
    ...(proxy.write ? { proxy: proxy.write } : {}),
    ...(relay.write ? { relay: relay.write } : {}),
  };
}
