import type { HealthSettings } from "../policy/intent.js";

/**
 * One path's health from its probes, with hysteresis. Each target keeps its own run of
 * answers and misses; the path is down once every target has missed `downAfter` probes in a
 * row, and up once one target has answered `upAfter` in a row. Between the two it keeps the
 * state it had, so one lost probe moves nothing. Pure: time comes in as milliseconds.
 */
export type PathState = "unknown" | "up" | "down";

export interface TargetRun {
  readonly misses: number;
  readonly answers: number;
}

export interface PathHealth {
  readonly state: PathState;
  /** When the state last changed (ms); a path counts as up for `hold` from here. */
  readonly since: number;
  readonly targets: readonly TargetRun[];
  readonly lastRttMs: number | null;
  /** What the latest miss said, while the path is not up. */
  readonly reason: string | null;
  /** Set while a WireGuard path's handshake is too old: it is down whatever probes say. */
  readonly stale: string | null;
}

export type ProbeResult =
  | { readonly ok: true; readonly rttMs: number }
  | { readonly ok: false; readonly reason: string };

export function initialHealth(targets: number, now: number): PathHealth {
  return {
    state: "unknown",
    since: now,
    targets: Array.from({ length: targets }, () => ({ misses: 0, answers: 0 })),
    lastRttMs: null,
    reason: null,
    stale: null,
  };
}

/** Misses in a row of the path: the fewest of any target's. */
export const pathMisses = (h: PathHealth): number =>
  h.targets.length === 0 ? 0 : Math.min(...h.targets.map((t) => t.misses));

export function observe(
  h: PathHealth,
  target: number,
  result: ProbeResult,
  settings: Pick<HealthSettings, "downAfter" | "upAfter">,
  now: number,
): PathHealth {
  const targets = h.targets.map((t, i): TargetRun => {
    if (i !== target) return t;
    return result.ok ? { misses: 0, answers: t.answers + 1 } : { misses: t.misses + 1, answers: 0 };
  });
  const up = targets.some((t) => t.answers >= settings.upAfter);
  const down = targets.length > 0 && targets.every((t) => t.misses >= settings.downAfter);
  const state: PathState = h.stale ? "down" : up ? "up" : down ? "down" : h.state;
  return {
    state,
    since: state === h.state ? h.since : now,
    targets,
    lastRttMs: result.ok ? result.rttMs : h.lastRttMs,
    reason: h.stale ?? (state === "up" ? null : result.ok ? h.reason : result.reason),
    stale: h.stale,
  };
}

/**
 * A WireGuard path's latest handshake (seconds ago; null: none yet, which probes judge). Older
 * than `maxAge`, the path is down with that reason: its keys are expiring, whatever a probe
 * answered a moment ago. Once fresh again, the probes bring it back up (`upAfter` answers).
 */
export function withHandshake(
  h: PathHealth,
  ageSeconds: number | null,
  maxAge: number,
  now: number,
): PathHealth {
  const stale = ageSeconds !== null && ageSeconds > maxAge ? `handshake ${ageSeconds} s old` : null;
  if (stale === h.stale) return h;
  // Back up only after answers with a fresh handshake, not on the strength of earlier ones.
  const targets = h.targets.map((t) => ({ misses: t.misses, answers: 0 }));
  if (stale === null) return { ...h, stale: null, targets };
  return {
    ...h,
    state: "down",
    since: h.state === "down" ? h.since : now,
    reason: stale,
    stale,
    targets,
  };
}

/** Seconds since a handshake at `latest` (unix seconds; 0: never), at `now` (ms). */
export const handshakeAge = (latest: number, now: number): number | null =>
  latest > 0 ? Math.max(0, Math.floor(now / 1000 - latest)) : null;
