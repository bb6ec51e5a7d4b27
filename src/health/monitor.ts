import type { ChainSpec } from "../compile/chains.js";
import type { CanaryReport } from "./canary.js";
import { type Active, choosePath } from "./choose.js";
import {
  initialHealth,
  observe,
  type PathHealth,
  type PathState,
  type ProbeResult,
  pathMisses,
  withHandshake,
} from "./path-health.js";

/** One probe's answer (or miss): which egress, which of its paths, which of the path's targets. */
export interface ProbeReport {
  readonly chain: number;
  readonly path: number;
  readonly target: number;
  readonly result: ProbeResult;
}

export type HealthEvent =
  | {
      readonly event: "path";
      readonly egress: string;
      readonly path: string;
      readonly state: PathState;
      readonly reason: string | null;
    }
  | {
      readonly event: "switch";
      readonly egress: string;
      /** Devices; null is none (fail closed). */
      readonly from: string | null;
      readonly to: string | null;
      readonly reason: string;
      /** From the probe report that decided it to the kernel's answer. */
      readonly tookMs: number;
    }
  | { readonly event: "switch-failed"; readonly egress: string; readonly message: string }
  | ({ readonly event: "canary"; readonly egress: string } & CanaryReport);

/** What the monitor does to the world: the adapters, and the clock. */
export interface HealthPorts {
  /** Puts the egress on a path, or none, in one atomic kernel change. */
  switchTo(chain: ChainSpec, active: Active): Promise<void>;
  /** Clears the egress's connections, pinned to the path they started on. */
  clearFlows(chain: ChainSpec): Promise<void>;
  now(): number;
  emit(event: HealthEvent): void;
}

export interface PathReport {
  readonly device: string;
  readonly state: PathState;
  readonly since: string;
  readonly lastRttMs: number | null;
  readonly misses: number;
  readonly reason: string | null;
}

export interface EgressHealth {
  readonly name: string;
  /** The device in use; null while every path is down (fail-closed engaged). */
  readonly active: string | null;
  readonly switches: number;
  readonly lastSwitchAt: string | null;
  readonly paths: readonly PathReport[];
  /** The leak canary's latest verdict; absent without a canary or before its first request. */
  readonly canary?: CanaryReport;
}

interface ChainState {
  readonly spec: ChainSpec;
  paths: PathHealth[];
  active: Active;
  switches: number;
  lastSwitchAt: number | null;
  /** The switch under way; a report meanwhile is weighed once it is done. */
  switching: Promise<void> | undefined;
  again: boolean;
  canary: CanaryReport | undefined;
}

const deviceOf = (c: ChainState, a: Active) =>
  a === "none" ? null : (c.spec.paths[a]?.device ?? null);

function why(c: ChainState, from: Active, to: Active): string {
  const name = (a: Active) => deviceOf(c, a) ?? "none";
  if (from !== "none" && c.paths[from]?.state === "down")
    return `${name(from)} is down (${c.paths[from]?.reason ?? "no answer"})`;
  if (to === "none") return "no path is up: fail-closed engaged";
  if (from === "none") return `${name(to)} is up`;
  return `failback: ${name(to)} has been up for ${c.spec.health.hold} s`;
}

/**
 * Judges each probed egress's paths from probe reports and keeps the egress on the path it
 * should use: one atomic switch, then its connections cleared. Switches of one egress run one
 * at a time; reports that arrive meanwhile are weighed when it is done.
 */
export class HealthMonitor {
  private readonly chains: ChainState[];

  constructor(
    specs: readonly ChainSpec[],
    /** Each egress's path as the kernel holds it now. */
    initial: readonly Active[],
    private readonly ports: HealthPorts,
  ) {
    const now = ports.now();
    this.chains = specs.map((spec, i) => ({
      spec,
      paths: spec.paths.map((p) => initialHealth(p.targets.length, now)),
      active: initial[i] ?? 0,
      switches: 0,
      lastSwitchAt: null,
      switching: undefined,
      again: false,
      canary: undefined,
    }));
  }

  report(r: ProbeReport): void {
    const settings = this.chains[r.chain]?.spec.health;
    if (!settings) return;
    this.judge(r.chain, r.path, (h) => observe(h, r.target, r.result, settings, this.ports.now()));
  }

  /** A WireGuard path's latest handshake, seconds ago (null: none yet). */
  handshake(chain: number, path: number, ageSeconds: number | null): void {
    const settings = this.chains[chain]?.spec.health;
    if (!settings) return;
    this.judge(chain, path, (h) =>
      withHandshake(h, ageSeconds, settings.handshakeMaxAge, this.ports.now()),
    );
  }

  private judge(chain: number, at: number, next: (h: PathHealth) => PathHealth): void {
    const c = this.chains[chain];
    const before = c?.paths[at];
    const path = c?.spec.paths[at];
    if (!c || !before || !path) return;
    const after = next(before);
    c.paths[at] = after;
    if (after.state !== before.state) {
      this.ports.emit({
        event: "path",
        egress: c.spec.name,
        path: path.device,
        state: after.state,
        reason: after.reason,
      });
    }
    if (c.spec.paths.length > 1) this.weigh(c, this.ports.now());
  }

  private weigh(c: ChainState, decidedAt: number): void {
    if (c.switching) {
      c.again = true;
      return;
    }
    const to = choosePath(c.paths, c.active, c.spec.health.hold, this.ports.now());
    if (to === c.active) return;
    const from = c.active;
    c.switching = this.switch(c, from, to, decidedAt).finally(() => {
      c.switching = undefined;
      if (c.again) {
        c.again = false;
        this.weigh(c, this.ports.now());
      }
    });
  }

  private async switch(c: ChainState, from: Active, to: Active, decidedAt: number) {
    const reason = why(c, from, to);
    try {
      await this.ports.switchTo(c.spec, to);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.ports.emit({ event: "switch-failed", egress: c.spec.name, message });
      return;
    }
    c.active = to;
    c.switches++;
    c.lastSwitchAt = this.ports.now();
    this.ports.emit({
      event: "switch",
      egress: c.spec.name,
      from: deviceOf(c, from),
      to: deviceOf(c, to),
      reason,
      tookMs: c.lastSwitchAt - decidedAt,
    });
    await this.ports.clearFlows(c.spec).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      this.ports.emit({ event: "switch-failed", egress: c.spec.name, message });
    });
  }

  /** The path an egress uses now, as this monitor last put it. */
  activeOf(chain: number): Active {
    return this.chains[chain]?.active ?? "none";
  }

  /** Alarms so far, which a canary verdict counts on from. */
  canaryAlarms(chain: number): number {
    return this.chains[chain]?.canary?.alarms ?? 0;
  }

  /** A canary verdict: kept for the report, and said when it changes or is a leak (an alarm). */
  canaryResult(chain: number, report: CanaryReport): void {
    const c = this.chains[chain];
    if (!c) return;
    const before = c.canary?.state;
    c.canary = report;
    if (report.state !== before || report.state === "leak")
      this.ports.emit({ event: "canary", egress: c.spec.name, ...report });
  }

  /** Resolves once no switch is under way (tests, and a clean stop). */
  async idle(): Promise<void> {
    while (this.chains.some((c) => c.switching))
      await Promise.all(this.chains.map((c) => c.switching));
  }

  snapshot(): EgressHealth[] {
    const iso = (ms: number) => new Date(ms).toISOString();
    return this.chains.map((c) => ({
      name: c.spec.name,
      active: deviceOf(c, c.active),
      switches: c.switches,
      lastSwitchAt: c.lastSwitchAt === null ? null : iso(c.lastSwitchAt),
      paths: c.spec.paths.map((p, i): PathReport => {
        const h = c.paths[i] ?? initialHealth(0, 0);
        return {
          device: p.device,
          state: h.state,
          since: iso(h.since),
          lastRttMs: h.lastRttMs,
          misses: pathMisses(h),
          reason: h.reason,
        };
      }),
      ...(c.canary ? { canary: c.canary } : {}),
    }));
  }
}
