import type { PathHealth } from "./path-health.js";

/** Which path an egress uses: a path of its chain by index, or none (it fails closed). */
export type Active = number | "none";

/**
 * Which path an egress should use now. Away from a path as soon as it is down: to the first
 * path that is up, or to none (fail closed) when no path is. Back to a more preferred path
 * only once it has been up for `hold` seconds (failback), so a path that flaps does not pull
 * the traffic to and fro. A path not yet judged (at start) keeps the traffic it has. Pure.
 */
export function choosePath(
  paths: readonly PathHealth[],
  active: Active,
  holdSeconds: number,
  now: number,
): Active {
  const settled = (h: PathHealth) => h.state === "up" && now - h.since >= holdSeconds * 1000;
  const current = active === "none" ? undefined : paths[active];
  if (active !== "none" && current && current.state !== "down") {
    const better = paths.findIndex((h, i) => i < active && settled(h));
    return better >= 0 ? better : active;
  }
  const first = paths.findIndex((h) => h.state === "up");
  return first >= 0 ? first : "none";
}
