import type { Target } from "../apply/target.js";
import { type ChainSpec, chainsOf } from "../compile/chains.js";
import { activeIn } from "../health/active.js";
import { askCanary, type CanaryReport, judgeCanary } from "../health/canary.js";
import type { PathState } from "../health/path-health.js";
import { readHealthReport } from "../health/report-file.js";
import type { LiveState } from "../plan/types.js";
import type { Intent, SiteIntent } from "../policy/intent.js";
import { connectOnce } from "../system/connect-prober.js";
import { pingOnce } from "../system/ping-prober.js";
import { readSysctls } from "../system/sysctl.js";

/** A peer's handshake older than this means the tunnel is down (WireGuard rekeys every 2 min). */
export const HANDSHAKE_STALE_SECONDS = 180;

export interface PathStatus {
  readonly device: string;
  /** unknown: not probed (an egress without `health`), or not judged yet. */
  readonly state: PathState;
  readonly lastRttMs: number | null;
  readonly misses: number;
  /** The latest handshake of the tunnel's exit peer, for a tunnel path; null otherwise. */
  readonly handshakeAgeSeconds: number | null;
  readonly reason: string | null;
}

export interface EgressHealthStatus {
  /** The device the egress uses now; null while it fails closed. */
  readonly active: string | null;
  readonly switches: number | null;
  readonly lastSwitchAt: string | null;
  /** Who judged the paths: the running monitor (`netpol watch`), or this status by one probe. */
  readonly judgedBy: "monitor" | "status probe";
  readonly paths: readonly PathStatus[];
  /** The leak canary's latest verdict (the monitor's, or one request now); absent without one. */
  readonly canary?: CanaryReport;
}

/** rp_filter is strict (1) on a device when the larger of `all` and the device's own is 1. */
const rpKey = (device: string) => `net.ipv4.conf.${device.replaceAll(".", "/")}.rp_filter`;
const RP_ALL = "net.ipv4.conf.all.rp_filter";

function strictRpFilter(values: ReadonlyMap<string, string>, device: string): string | undefined {
  const all = Number(values.get(RP_ALL) ?? 0);
  const own = Number(values.get(rpKey(device)) ?? 0);
  if (Math.max(all, own) !== 1) return undefined;
  const which = own === 1 ? rpKey(device) : RP_ALL;
  return `strict rp_filter (${which} = 1) drops the replies routed by mark: set it to 2 (loose)`;
}

/** Judged once, here and now, where no monitor reports: one probe per target of every path. */
async function probedOnce(target: Target, chains: readonly ChainSpec[]) {
  const flat = chains.flatMap((c, ci) =>
    c.paths.flatMap((p, pi) =>
      p.probe ? [] : p.targets.map((address) => ({ ci, pi, mark: p.mark, address })),
    ),
  );
  const connects = chains.flatMap((c, ci) =>
    c.paths.flatMap((p, pi) => {
      if (!p.probe) return [];
      const { localPort, ...probe } = p.probe;
      return [{ ci, pi, ...probe, device: p.device, localPort, intervalSeconds: 1 }];
    }),
  );
  const [pinged, connected] = await Promise.all([
    pingOnce(target.runner, flat),
    connectOnce(target.runner, connects),
  ]);
  const results = [...pinged, ...connected];
  const of = [...flat, ...connects];
  return chains.map((c, ci) =>
    c.paths.map((_, pi) => {
      const mine = results.filter((_r, i) => of[i]?.ci === ci && of[i]?.pi === pi);
      const answered = mine.find((r) => r.ok);
      const missed = mine.find((r) => !r.ok);
      return {
        state: (answered ? "up" : "down") as PathState,
        lastRttMs: answered?.ok ? answered.rttMs : null,
        misses: answered ? 0 : 1,
        reason: answered || !missed || missed.ok ? null : missed.reason,
      };
    }),
  );
}

const canaryOf = (r: CanaryReport | null | undefined) => (r ? { canary: r } : {});

/** One canary request now, judged against the path the kernel holds (where no monitor runs). */
async function canaryOnce(
  target: Target,
  c: ChainSpec,
  live: LiveState,
): Promise<CanaryReport | null> {
  if (!c.canary) return null;
  const held = activeIn(c, live.routes.owned) ?? "none";
  const answer = await askCanary(target.runner, c.canary);
  return judgeCanary(c.canary, answer, held, held, 0, Date.now());
}

/**
 * The health of each probed egress of the site, by its first egress's name: from the running
 * monitor's report, or from one probe of every path made now. A path with strict rp_filter is
 * never reported up: its replies are dropped whatever a probe said a moment ago.
 */
export async function egressHealth(
  target: Target,
  intent: Intent,
  site: SiteIntent,
  live: LiveState,
  handshakeAge: (device: string) => number | null,
): Promise<Map<string, EgressHealthStatus>> {
  const chains = chainsOf(intent, site);
  if (chains.length === 0) return new Map();
  const devices = [...new Set(chains.flatMap((c) => c.paths.map((p) => p.device)))];
  const [report, sysctls] = await Promise.all([
    readHealthReport(target.files),
    readSysctls(target.runner, [RP_ALL, ...devices.map(rpKey)]),
  ]);
  const reported = new Map((report?.egress ?? []).map((e) => [e.name, e]));
  const unreported = chains.filter((c) => !reported.has(c.name));
  const [probed, asked] = await Promise.all([
    unreported.length > 0 ? probedOnce(target, unreported) : [],
    Promise.all(unreported.map((c) => canaryOnce(target, c, live))),
  ]);
  const up = new Set(live.links.filter((l) => l.up).map((l) => l.name));
  return new Map(
    chains.map((c): [string, EgressHealthStatus] => {
      const monitor = reported.get(c.name);
      const once = probed[unreported.indexOf(c)];
      const held = activeIn(c, live.routes.owned);
      const device = held === undefined || held === "none" ? null : (c.paths[held]?.device ?? null);
      const paths = c.paths.map((p, i): PathStatus => {
        const judged = monitor?.paths[i] ?? once?.[i];
        const strict = strictRpFilter(sysctls, p.device);
        const gone = up.has(p.device) ? undefined : `device ${p.device} is absent or down`;
        const handshake = handshakeAge(p.device);
        // As the monitor judges it (withHandshake): older than the egress's handshakeMaxAge.
        const stale =
          handshake !== null && handshake > c.health.handshakeMaxAge
            ? `handshake ${handshake} s old`
            : undefined;
        const trap = gone ?? strict ?? stale;
        return {
          device: p.device,
          state: trap ? "down" : (judged?.state ?? "unknown"),
          lastRttMs: judged?.lastRttMs ?? null,
          misses: judged?.misses ?? 0,
          handshakeAgeSeconds: handshake,
          reason: trap ?? judged?.reason ?? null,
        };
      });
      return [
        c.name,
        {
          active: device !== null && up.has(device) ? device : null,
          switches: monitor?.switches ?? null,
          lastSwitchAt: monitor?.lastSwitchAt ?? null,
          judgedBy: monitor ? "monitor" : "status probe",
          paths,
          ...canaryOf(monitor ? monitor.canary : asked[unreported.indexOf(c)]),
        },
      ];
    }),
  );
}
