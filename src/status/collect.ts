import { revertExpired } from "../apply/rollback/confirm.js";
import { planSite } from "../apply/site/plan-site.js";
import type { LiveReader } from "../apply/site/read-live.js";
import type { loadInForce } from "../apply/source/in-force.js";
import { describeInterrupted, interruptedBy, loadJournal } from "../apply/state/journal.js";
import { describePending, loadPending } from "../apply/state/pending.js";
import type { Target } from "../apply/target.js";
import { compileSite } from "../compile/compile.js";
import { siteMarks } from "../compile/egress-groups.js";
import { guardComment } from "../compile/nftables.js";
import { contactStatus, type FleetContactStatus, readContact } from "../fleet/agent/contact.js";
import { formatAddress } from "../net/cidr.js";
import { formatHostPort } from "../net/host-port.js";
import { type PlanJson, planJson } from "../plan/format.js";
import { routeKey } from "../plan/keys.js";
import type { LiveState } from "../plan/types.js";
import type { Intent } from "../policy/intent.js";
import { readUpstreams } from "../system/caddy/admin.js";
import { type ForwardDrop, readForwardDrops } from "../system/nftables.js";
import { probeTcp } from "../system/probe.js";
import { VERSION } from "../version.js";
import type { CertificateStatus } from "./certificates.js";
import { collectCertificates } from "./collect-certificates.js";
import { type EgressHealthStatus, egressHealth, HANDSHAKE_STALE_SECONDS } from "./egress-health.js";
import { strayProxyRoutes } from "./stray-proxy.js";

export { HANDSHAKE_STALE_SECONDS } from "./egress-health.js";

export interface PeerStatus {
  readonly site: string | null;
  readonly publicKey: string;
  readonly endpoint: string | null;
  readonly allowedIps: readonly string[];
  readonly latestHandshake: string | null;
  readonly handshakeAgeSeconds: number | null;
  readonly rxBytes: number;
  readonly txBytes: number;
}

export interface SiteStatus {
  readonly site: string | null;
  readonly scope: string;
  /** The netpol that answers (another site's may differ from this one's). */
  readonly version: string;
  readonly policy: {
    readonly hash: string;
    readonly appliedAt: string;
    readonly appliedBy: string;
  } | null;
  readonly drift: ReturnType<typeof planJson> | null;
  /** An apply made with --confirm that reverts by itself at `deadline` unless confirmed. */
  readonly pendingConfirm: {
    readonly deadline: string;
    readonly policyHash: string;
    readonly appliedBy: string;
    readonly message: string;
  } | null;
  /** An apply that is under way, or was killed before it finished. */
  readonly interruptedApply: {
    readonly startedAt: string;
    readonly policyHash: string;
    readonly running: boolean;
    readonly message: string;
  } | null;
  readonly tunnels: readonly {
    readonly interface: string;
    /** The device is up: one set down carries nothing, whatever its last handshake says. */
    readonly up: boolean;
    readonly listenPort: number;
    readonly peers: readonly PeerStatus[];
  }[];
  readonly egress: readonly {
    readonly name: string;
    readonly device: string;
    readonly deviceUp: boolean;
    readonly failClosed: boolean;
    /** The tunnel is down and the unreachable route is what answers. */
    readonly failClosedEngaged: boolean;
    readonly droppedPackets: number | null;
    /** Probed egresses (a chain, or `health` set): the path in use and each path's health. */
    readonly health: EgressHealthStatus | null;
  }[];
  /**
   * Chains of other tables on the forward hook whose policy is drop (Docker's FORWARD): what
   * netpol forwards passes only where one of their own rules accepts it.
   */
  readonly forwardDrops: readonly ForwardDrop[];
  readonly services: readonly {
    readonly name: string;
    readonly listen: string;
    readonly target: string;
    readonly reachable: boolean | null;
    readonly how: string;
    /** HTTP services: whether Caddy holds the route, and the failures its proxy counted. */
    readonly proxy?: { readonly routed: boolean; readonly upstreamFails: number | null };
  }[];
  /** Hostnames published with `tls: auto`: the certificate served, the last issuance error. */
  readonly certificates: readonly CertificateStatus[];
  /**
   * A site of a fleet (its agent ran here): when etcd last answered, and whether the policy
   * in force may be stale (no answer within the live report's TTL). Null: no fleet here.
   */
  readonly fleet: FleetContactStatus | null;
}

function peers(
  intent: Intent,
  live: LiveState,
  upLinks: ReadonlySet<string>,
  now: number,
): SiteStatus["tunnels"] {
  const siteOfKey = new Map(
    intent.tunnels.flatMap((t) => t.members.map((m) => [m.publicKey, m.site] as const)),
  );
  return live.wireguard.map((w) => ({
    interface: w.name,
    up: upLinks.has(w.name),
    listenPort: w.listenPort,
    peers: w.peers.map((p) => ({
      site: siteOfKey.get(p.publicKey) ?? null,
      publicKey: p.publicKey,
      endpoint: p.endpoint ?? null,
      allowedIps: p.allowedIps,
      latestHandshake:
        p.latestHandshake > 0 ? new Date(p.latestHandshake * 1000).toISOString() : null,
      handshakeAgeSeconds:
        p.latestHandshake > 0 ? Math.max(0, Math.round(now / 1000 - p.latestHandshake)) : null,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
    })),
  }));
}

/**
 * Packets each fail-closed guard has dropped, from the counters in netpol's table, by the
 * guard's comment (its IPv4, IPv6 and unlisted-family rules summed: `fail-closed NAME` and
 * `fail-closed NAME, unlisted IPv4`). One pass over the listing for every egress.
 */
function droppedByGuard(listing: string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of (listing ?? "").matchAll(
    /counter packets (\d+) bytes \d+ drop comment "([^",]*)[",]/g,
  )) {
    const guard = m[2] ?? "";
    counts.set(guard, (counts.get(guard) ?? 0) + Number(m[1]));
  }
  return counts;
}

function withStray(
  drift: PlanJson,
  stray: Pick<PlanJson, "changes" | "waiting" | "warnings"> | undefined,
): PlanJson {
  if (!stray) return drift;
  const changes = [...drift.changes, ...stray.changes];
  return {
    ...drift,
    inSync: changes.length === 0,
    changes,
    waiting: [...drift.waiting, ...stray.waiting],
    warnings: [...(drift.warnings ?? []), ...(stray.warnings ?? [])],
  };
}

/** Where a status comes from, when not all from the tools (a resident holds parts of it). */
export interface StatusSources {
  /** How the live state is read (a resident: from its live model). */
  readonly read?: LiveReader;
  /** The policy in force, parsed (a resident keeps it parsed while the record is the same). */
  readonly inForce?: typeof loadInForce;
  /** Other tables' forward chains that drop (a resident reads them again every interval). */
  readonly forwardDrops?: typeof readForwardDrops;
}

/** The policy parser loads with a status asked for, not with a resident that may serve none. */
const parsedInForce: typeof loadInForce = (files) =>
  import("../apply/source/in-force.js").then((m) => m.loadInForce(files));

/**
 * What a site reports about itself: the policy in force, drift, tunnels, egress and published
 * services. Reads the live state once (`read`: from the tools, unless a resident process holds
 * it current); probes every published TCP/HTTP target at once.
 */
export async function collectStatus(
  target: Target,
  now: number,
  from: StatusSources = {},
): Promise<SiteStatus> {
  const {
    read,
    inForce: inForceNow = parsedInForce,
    forwardDrops: drops = readForwardDrops,
  } = from;
  const files = target.files;
  // A revert past its deadline with no timer left to do it is done first: what follows is true.
  await revertExpired(target);
  const inForce = await inForceNow(files);
  const pending = await loadPending(files);
  const journal = await loadJournal(files);
  const interrupted = interruptedBy(journal, target.host);
  const contact = await readContact(target);
  const fleet = contact ? contactStatus(target, contact, now) : null;
  const pendingConfirm = pending
    ? {
        deadline: pending.deadline,
        policyHash: pending.policyHash,
        appliedBy: pending.appliedBy,
        message: describePending(pending),
      }
    : null;
  const interruptedApply = interrupted
    ? {
        startedAt: interrupted.startedAt,
        policyHash: interrupted.policyHash,
        running: interrupted.running,
        message: describeInterrupted(interrupted),
      }
    : null;
  // An apply whose proxy write went unanswered names Caddy in its journal: routes it left there
  // count as drift whatever the policy in force says (or when there is none).
  const strayAt = journal?.proxy;
  if (!inForce) {
    // Nothing applied here, so nothing here is netpol's to report on but what an apply left.
    const stray =
      strayAt === undefined ? undefined : await strayProxyRoutes(target.runner, strayAt);
    return {
      site: null,
      scope: target.files.scope,
      version: VERSION,
      policy: null,
      drift:
        stray && journal
          ? { site: journal.site, inSync: stray.changes.length === 0, conflicts: [], ...stray }
          : null,
      pendingConfirm,
      interruptedApply,
      tunnels: [],
      egress: [],
      forwardDrops: [],
      services: [],
      certificates: [],
      fleet,
    };
  }
  const { record, policy: loaded } = inForce;
  const site = record.site;
  const { intent } = loaded;
  const published = intent.services.filter((x) => x.publishOn === site);
  // One probe for every TCP and HTTP target at once (a site may publish thousands), while the
  // live state is read: it needs nothing from it.
  const probed = published.filter((s) => s.kind !== "udp");
  // keyDir is only for applying; a plan reads no keys. Compiled here, not by planSite: its
  // full garbage collection after a validation would stall a server answering meanwhile.
  const compiled = { hash: loaded.hash, text: loaded.text, desired: compileSite(intent, site) };
  const [{ live, plan, desired }, forwardDrops, answers] = await Promise.all([
    planSite(target, { ...compiled, keyDir: "", site }, false, read),
    drops(target.runner),
    probeTcp(
      target.runner,
      probed.map((s) => ({ host: formatAddress(s.target.address), port: s.target.port })),
    ),
  ]);
  const siteIntent = intent.sites.find((s) => s.name === site);
  const groups = siteIntent ? siteMarks(intent.settings, siteIntent).groups : [];
  // Built once for every tunnel and egress: at 10,000 egresses a scan per egress is quadratic.
  const upLinks = new Set(live.links.filter((l) => l.up).map((l) => l.name));
  const tunnels = peers(intent, live, upLinks, now);
  // Built once, as the look-ups below: a site may publish thousands of services.
  const freshDevices = new Set(
    tunnels
      .filter((t) =>
        t.peers.some(
          (p) => p.handshakeAgeSeconds !== null && p.handshakeAgeSeconds < HANDSHAKE_STALE_SECONDS,
        ),
      )
      .map((t) => t.interface),
  );

  const admin = desired.proxy?.settings.adminListen;
  const [upstreams, certificates, stray] = await Promise.all([
    admin !== undefined && live.proxy?.reachable ? readUpstreams(target.runner, admin) : undefined,
    collectCertificates(target.runner, desired, live, published, siteIntent?.wan),
    // Where the policy in force publishes through the same Caddy, the plan shows them already.
    strayAt !== undefined && strayAt !== admin
      ? strayProxyRoutes(target.runner, strayAt)
      : undefined,
  ]);
  const failsOf = new Map<string, number>();
  for (const u of upstreams ?? []) if (!failsOf.has(u.address)) failsOf.set(u.address, u.fails);
  const unrouted = new Set(
    plan.changes.flatMap((c) => (c.kind === "proxy" && c.op !== "remove" ? [c.service] : [])),
  );
  const reachable = new Map(probed.map((s, i) => [s, answers[i] === true]));
  const services = published.map((s): SiteStatus["services"][number] => {
    const targetText = formatHostPort(s.target.address, s.target.port);
    const listen = s.kind === "http" ? `http ${s.hostname}` : `${s.kind} ${s.port}`;
    if (s.kind === "udp") {
      return {
        name: s.name,
        listen,
        target: targetText,
        reachable: freshDevices.has(s.target.via),
        how: "tunnel handshake",
      };
    }
    return {
      name: s.name,
      listen,
      target: targetText,
      reachable: reachable.get(s) ?? false,
      how: "tcp connect through the tunnel",
      ...(s.kind === "http"
        ? {
            proxy: {
              routed: live.proxy?.reachable === true && !unrouted.has(s.name),
              upstreamFails: upstreams ? (failsOf.get(targetText) ?? null) : null,
            },
          }
        : {}),
    };
  });
  const liveRoutes = new Set(live.routes.owned.map(routeKey));
  const unroutedDevices = new Set(
    desired.routes.flatMap((r) =>
      r.type === "unicast" && !liveRoutes.has(routeKey(r)) ? [r.device] : [],
    ),
  );
  const groupOf = new Map(groups.flatMap((g) => g.egress.map((e) => [e, g] as const)));
  const dropped = droppedByGuard(live.nft?.listing);
  const handshakes = new Map(
    tunnels.map((t) => {
      const ages = t.peers.flatMap((p) =>
        p.handshakeAgeSeconds === null ? [] : [p.handshakeAgeSeconds],
      );
      return [t.interface, ages.length > 0 ? Math.min(...ages) : null] as const;
    }),
  );
  const health = siteIntent
    ? await egressHealth(target, intent, siteIntent, live, (d) => handshakes.get(d) ?? null)
    : new Map<string, EgressHealthStatus>();
  return {
    site,
    scope: target.files.scope,
    version: VERSION,
    policy: { hash: record.policyHash, appliedAt: record.appliedAt, appliedBy: record.appliedBy },
    drift: withStray(planJson(plan), stray),
    pendingConfirm,
    interruptedApply,
    tunnels,
    egress: (siteIntent?.egress ?? []).map((e) => {
      const group = groupOf.get(e);
      const judged = health.get(group?.egress[0]?.name ?? e.name) ?? null;
      // A chain routes by whichever path is active; a single path by its device.
      const device =
        judged && e.paths.length > 1 ? (judged.active ?? e.paths[0].device) : e.paths[0].device;
      const up = upLinks.has(device);
      // Up is not enough: until its route through the device is back, the unreachable one answers.
      const routed = e.paths.length > 1 ? judged?.active != null : !unroutedDevices.has(device);
      return {
        name: e.name,
        device,
        deviceUp: up,
        failClosed: e.failClosed,
        failClosedEngaged: e.failClosed && !(up && routed),
        droppedPackets: group ? (dropped.get(guardComment(group)) ?? null) : null,
        health: judged,
      };
    }),
    forwardDrops,
    services,
    certificates,
    fleet,
  };
}
