import { HANDSHAKE_STALE_SECONDS, type SiteStatus } from "../../status/collect.js";
import { formatAge } from "../../status/format.js";

/** How a thing is doing, worst last: the page colours it and says it in words. */
export type Health = "ok" | "unknown" | "warn" | "bad";

const RANK: Record<Health, number> = { ok: 0, unknown: 1, warn: 2, bad: 3 };

export function worst(healths: Iterable<Health>): Health {
  let w: Health = "ok";
  for (const h of healths) if (RANK[h] > RANK[w]) w = h;
  return w;
}

export interface Fact {
  readonly label: string;
  readonly value: string;
}

/**
 * One thing the page shows with a state: a tunnel and its peers, an egress and its paths, a
 * published service. A field the status document gains is one more fact here, or one more part.
 */
export interface Item {
  /** Stable across samples: what a change of state is told by (`home/tunnel/wg0`). */
  readonly id: string;
  readonly kind: string;
  readonly name: string;
  readonly health: Health;
  /** A few words: "up", "down, fail-closed engaged", "reachable". */
  readonly state: string;
  readonly facts: readonly Fact[];
  readonly parts: readonly Item[];
}

/** A site as this server last heard from it: its status, or why it has none. */
export interface SiteSample {
  readonly site: string;
  readonly status?: SiteStatus;
  /** Why the last request failed; the status, if any, is the one before. */
  readonly error?: string;
}

export interface SiteView {
  readonly id: string;
  readonly name: string;
  /** The site this server runs on: the only one the page's buttons act on. */
  readonly local: boolean;
  /** The worst of the site's own state and each of its parts. */
  readonly health: Health;
  /** The site's own state, in words and as a health: policy, drift, pending, reachable. */
  readonly state: string;
  readonly own: Health;
  readonly facts: readonly Fact[];
  readonly pending: {
    readonly deadline: string;
    readonly policyHash: string;
    readonly appliedBy: string;
  } | null;
  readonly drift: readonly string[];
  readonly notes: readonly string[];
  readonly tunnels: readonly Item[];
  readonly egress: readonly Item[];
  readonly services: readonly Item[];
  /** Tunnels to other sites, for the picture: one per peer that names its site. */
  readonly links: readonly {
    readonly to: string;
    readonly health: Health;
    readonly label: string;
  }[];
}

/** A moment as the page says it: `2026-11-22 10:00:00 UTC`. */
export function formatWhen(iso: string): string {
  return iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC");
}

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

const item = (
  id: string,
  kind: string,
  name: string,
  health: Health,
  state: string,
  facts: readonly Fact[],
  parts: readonly Item[] = [],
): Item => ({ id, kind, name, health, state, facts, parts });

type Tunnel = SiteStatus["tunnels"][number];

function peerItem(site: string, t: Tunnel, p: Tunnel["peers"][number]): Item {
  const age = p.handshakeAgeSeconds;
  const fresh = age !== null && age < HANDSHAKE_STALE_SECONDS;
  const name = p.site ?? `${p.publicKey.slice(0, 8)}…`;
  return item(
    `${site}/tunnel/${t.interface}/peer/${p.site ?? p.publicKey}`,
    "peer",
    name,
    t.up && fresh ? "ok" : "bad",
    !t.up
      ? "device down"
      : fresh
        ? "handshake fresh"
        : age === null
          ? "no handshake yet"
          : "handshake stale",
    [
      { label: "handshake", value: formatAge(age) },
      { label: "received", value: formatBytes(p.rxBytes) },
      { label: "sent", value: formatBytes(p.txBytes) },
      { label: "endpoint", value: p.endpoint ?? "-" },
    ],
  );
}

function tunnelItem(site: string, t: Tunnel): Item {
  const peers = t.peers.map((p) => peerItem(site, t, p));
  const health = !t.up ? "bad" : peers.some((p) => p.health === "ok") ? "ok" : "bad";
  return item(
    `${site}/tunnel/${t.interface}`,
    "tunnel",
    t.interface,
    health,
    !t.up ? "down" : health === "ok" ? "up" : "no fresh handshake",
    [{ label: "listen port", value: t.listenPort === 0 ? "-" : String(t.listenPort) }],
    peers,
  );
}

type Egress = SiteStatus["egress"][number];
type Path = NonNullable<Egress["health"]>["paths"][number];

const PATH_HEALTH: Record<Path["state"], Health> = { up: "ok", down: "bad", unknown: "unknown" };

function pathItem(site: string, e: Egress, p: Path): Item {
  const active = e.health?.active === p.device;
  return item(
    `${site}/egress/${e.name}/path/${p.device}`,
    "path",
    p.device,
    PATH_HEALTH[p.state],
    `${active ? "active, " : ""}${p.state === "unknown" ? "not judged" : p.state}`,
    [
      ...(p.lastRttMs !== null ? [{ label: "probe RTT", value: `${p.lastRttMs} ms` }] : []),
      ...(p.misses > 0 ? [{ label: "missed probes", value: String(p.misses) }] : []),
      ...(p.handshakeAgeSeconds !== null
        ? [{ label: "handshake", value: formatAge(p.handshakeAgeSeconds) }]
        : []),
      ...(p.reason !== null ? [{ label: "why", value: p.reason }] : []),
    ],
  );
}

function egressItem(site: string, e: Egress): Item {
  const h = e.health;
  const closed = h !== null && h.active === null;
  return item(
    `${site}/egress/${e.name}`,
    "egress",
    e.name,
    e.deviceUp && !closed ? "ok" : "bad",
    closed
      ? "no path up, fail-closed engaged"
      : e.deviceUp
        ? "up"
        : e.failClosedEngaged
          ? "down, fail-closed engaged"
          : "down",
    [
      { label: h && h.paths.length > 1 ? "active path" : "via", value: e.device },
      { label: "fail closed", value: e.failClosed ? "yes" : "no" },
      ...(e.droppedPackets !== null
        ? [{ label: "stopped by the guard", value: `${e.droppedPackets} packets` }]
        : []),
      ...(h?.switches != null ? [{ label: "switches", value: String(h.switches) }] : []),
      ...(h?.lastSwitchAt ? [{ label: "last switch", value: formatWhen(h.lastSwitchAt) }] : []),
      ...(h ? [{ label: "judged by", value: h.judgedBy }] : []),
    ],
    (h?.paths ?? []).map((p) => pathItem(site, e, p)),
  );
}

function serviceItem(site: string, s: SiteStatus["services"][number]): Item {
  const routed = s.proxy?.routed ?? true;
  const fails = s.proxy?.upstreamFails ?? null;
  const health: Health = !routed
    ? "bad"
    : s.reachable === null
      ? "unknown"
      : !s.reachable
        ? "bad"
        : fails !== null && fails > 0
          ? "warn"
          : "ok";
  const state = !routed
    ? "route missing in Caddy"
    : s.reachable === null
      ? "unknown"
      : s.reachable
        ? "reachable"
        : "unreachable";
  return item(`${site}/service/${s.name}`, "service", s.name, health, state, [
    { label: "listens", value: s.listen },
    { label: "target", value: s.target },
    { label: "checked by", value: s.how },
    ...(s.proxy ? [{ label: "Caddy route", value: s.proxy.routed ? "present" : "missing" }] : []),
    ...(fails !== null ? [{ label: "upstream failures", value: String(fails) }] : []),
  ]);
}

function statusView(name: string, s: SiteStatus, local: boolean, error?: string): SiteView {
  const tunnels = s.tunnels.map((t) => tunnelItem(name, t));
  const egress = s.egress.map((e) => egressItem(name, e));
  const services = s.services.map((v) => serviceItem(name, v));
  const changes = s.drift?.changes.length ?? 0;
  const notes = [
    ...(error ? [`not reachable now (${error}); showing what it said last`] : []),
    ...(s.interruptedApply ? [s.interruptedApply.message] : []),
    ...(s.fleet?.stale ? [s.fleet.message] : []),
    ...(s.drift?.waiting ?? []).map((w) => `waiting: ${w}`),
    ...(s.drift?.conflicts ?? []).map((c) => `conflict: ${c}`),
    ...(s.drift?.warnings ?? []).map((w) => `warning: ${w}`),
    ...s.forwardDrops.map(
      (d) =>
        `chain ${d.chain} of table ${d.table} drops forwarded traffic none of its rules accepts (policy drop)`,
    ),
  ];
  const own: Health = error
    ? "bad"
    : s.interruptedApply
      ? "bad"
      : s.policy === null
        ? "unknown"
        : changes > 0 || s.pendingConfirm || s.fleet?.stale
          ? "warn"
          : "ok";
  const state = error
    ? "not reachable"
    : s.policy === null
      ? "no policy applied"
      : s.pendingConfirm
        ? "awaiting confirmation"
        : changes > 0
          ? `drift: ${changes} change${changes === 1 ? "" : "s"} pending`
          : "in sync";
  return {
    id: name,
    name,
    local,
    health: worst([own, ...[...tunnels, ...egress, ...services].map((i) => i.health)]),
    state,
    own,
    facts: [
      { label: "scope", value: s.scope },
      { label: "netpol", value: s.version },
      ...(s.policy
        ? [
            { label: "policy", value: s.policy.hash.slice(0, 12) },
            { label: "applied", value: formatWhen(s.policy.appliedAt) },
            { label: "by", value: s.policy.appliedBy },
          ]
        : []),
      // A site of a fleet (an older netpol's status has no such field).
      ...(s.fleet
        ? [{ label: "etcd", value: `reached ${formatAge(s.fleet.lastContactAgeSeconds)}` }]
        : []),
    ],
    pending: s.pendingConfirm
      ? {
          deadline: s.pendingConfirm.deadline,
          policyHash: s.pendingConfirm.policyHash.slice(0, 12),
          appliedBy: s.pendingConfirm.appliedBy,
        }
      : null,
    drift: (s.drift?.changes ?? []).map((c) => `${c.op} ${c.kind} ${c.what}`),
    notes,
    tunnels,
    egress,
    services,
    links: s.tunnels.flatMap((t, i) =>
      t.peers.flatMap((p, j) => {
        const seen = tunnels[i]?.parts[j];
        return p.site && seen
          ? [{ to: p.site, health: seen.health, label: `${t.interface}: ${seen.state}` }]
          : [];
      }),
    ),
  };
}

function unreachableView(name: string, error: string, local: boolean): SiteView {
  return {
    id: name,
    name,
    local,
    health: "bad",
    state: "not reachable",
    own: "bad",
    facts: [],
    pending: null,
    drift: [],
    notes: [error],
    tunnels: [],
    egress: [],
    services: [],
    links: [],
  };
}

/** Every site the page shows: this one first, then the others in the policy's order. */
export function sitesView(local: SiteSample, others: readonly SiteSample[]): SiteView[] {
  return [local, ...others].map((o, i) =>
    o.status
      ? statusView(o.site, o.status, i === 0, o.error)
      : unreachableView(o.site, o.error ?? "not asked yet", i === 0),
  );
}

/** Every item of every site, parts included, by id: what a change of state is looked for in. */
export function itemsById(sites: readonly SiteView[]): Map<string, Item> {
  const all = new Map<string, Item>();
  const add = (i: Item) => {
    all.set(i.id, i);
    for (const p of i.parts) add(p);
  };
  for (const s of sites) for (const i of [...s.tunnels, ...s.egress, ...s.services]) add(i);
  return all;
}
