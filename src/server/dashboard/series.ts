import type { SiteStatus } from "../../status/collect.js";

/** One number read from a status: a counter (plotted as its rate) or a gauge (as it is). */
export interface Reading {
  readonly key: string;
  readonly title: string;
  readonly unit: string;
  readonly kind: "counter" | "gauge";
  readonly value: number;
}

export interface Point {
  readonly at: number;
  readonly value: number;
}

export interface Series {
  readonly key: string;
  readonly title: string;
  readonly unit: string;
  readonly points: readonly Point[];
}

/** What the page plots of a site: throughput per tunnel, probe RTT per path, guard drops. */
export function readingsOf(site: string, s: SiteStatus): Reading[] {
  return [
    ...s.tunnels.map(
      (t): Reading => ({
        key: `${site}/tunnel/${t.interface}`,
        title: `${site}: tunnel ${t.interface} throughput`,
        unit: "B/s",
        kind: "counter",
        value: t.peers.reduce((sum, p) => sum + p.rxBytes + p.txBytes, 0),
      }),
    ),
    ...s.egress.flatMap((e) =>
      (e.health?.paths ?? []).flatMap((p): Reading[] =>
        p.lastRttMs === null
          ? []
          : [
              {
                key: `${site}/egress/${e.name}/path/${p.device}`,
                title: `${site}: egress ${e.name} path ${p.device} probe RTT`,
                unit: "ms",
                kind: "gauge",
                value: p.lastRttMs,
              },
            ],
      ),
    ),
    ...s.egress.flatMap((e): Reading[] =>
      e.droppedPackets === null
        ? []
        : [
            {
              key: `${site}/egress/${e.name}`,
              title: `${site}: egress ${e.name} guard drops`,
              unit: "packets/s",
              kind: "counter",
              value: e.droppedPackets,
            },
          ],
    ),
  ];
}

/** How far back the plots go. */
export const WINDOW_MS = 10 * 60 * 1000;

/**
 * Small time series kept in memory, no database: the last ten minutes of each reading.
 * Prometheus (`/metrics`) is there for anything longer.
 */
export class SeriesStore {
  private readonly last = new Map<string, Point>();
  private readonly series = new Map<string, { title: string; unit: string; points: Point[] }>();

  record(at: number, readings: readonly Reading[]): void {
    for (const r of readings) {
      const value = r.kind === "gauge" ? r.value : this.rate(r.key, at, r.value);
      if (value === undefined) continue;
      const s = this.series.get(r.key) ?? { title: r.title, unit: r.unit, points: [] };
      this.series.set(r.key, s);
      s.points.push({ at, value });
      while ((s.points[0]?.at ?? at) < at - WINDOW_MS) s.points.shift();
    }
  }

  all(): Series[] {
    return [...this.series].map(([key, s]) => ({ key, ...s }));
  }

  /** Per second since the reading before; none for the first, or after a counter went back. */
  private rate(key: string, at: number, value: number): number | undefined {
    const before = this.last.get(key);
    this.last.set(key, { at, value });
    if (!before || at <= before.at || value < before.value) return undefined;
    return ((value - before.value) * 1000) / (at - before.at);
  }
}
