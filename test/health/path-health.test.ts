import { describe, expect, it } from "vitest";
import { choosePath } from "../../src/health/choose.js";
import {
  initialHealth,
  observe,
  type PathHealth,
  type ProbeResult,
  pathMisses,
} from "../../src/health/path-health.js";

const SETTINGS = { downAfter: 2, upAfter: 3 };
const ok: ProbeResult = { ok: true, rttMs: 12 };
const miss: ProbeResult = { ok: false, reason: "no answer from 192.0.2.80" };

/** Feeds one target's results, one a second from t = 1 s; returns every state on the way. */
function feed(h: PathHealth, target: number, results: readonly ProbeResult[], t0 = 1000) {
  const states: string[] = [];
  let at = h;
  results.forEach((r, i) => {
    at = observe(at, target, r, SETTINGS, t0 + i * 1000);
    states.push(at.state);
  });
  return { health: at, states };
}

describe("a path's health", () => {
  it("comes up after upAfter answers in a row, and goes down after downAfter misses", () => {
    const { health, states } = feed(initialHealth(1, 0), 0, [ok, ok, ok, miss, miss]);
    expect(states).toEqual(["unknown", "unknown", "up", "up", "down"]);
    expect(health.since).toBe(5000);
    expect(health.reason).toBe("no answer from 192.0.2.80");
    expect(pathMisses(health)).toBe(2);
  });

  it("ignores one lost probe between answers (hysteresis)", () => {
    const { states } = feed(initialHealth(1, 0), 0, [ok, ok, ok, miss, ok, miss, ok, ok]);
    expect(states.slice(2)).toEqual(["up", "up", "up", "up", "up", "up"]);
  });

  it("needs upAfter answers in a row to come back from down", () => {
    const down = feed(initialHealth(1, 0), 0, [miss, miss]).health;
    expect(down.state).toBe("down");
    const { states } = feed(down, 0, [ok, ok, miss, ok, ok, ok]);
    expect(states).toEqual(["down", "down", "down", "down", "down", "up"]);
  });

  it("is down only when every target misses, up when one answers", () => {
    let h = feed(initialHealth(2, 0), 0, [ok, ok, ok]).health;
    h = feed(h, 1, [miss, miss, miss]).health;
    expect(h.state).toBe("up");
    h = feed(h, 0, [miss, miss]).health;
    expect(h.state).toBe("down");
    expect(pathMisses(h)).toBe(2);
  });

  it("keeps the last round-trip time", () => {
    const h = observe(initialHealth(1, 0), 0, { ok: true, rttMs: 7.5 }, SETTINGS, 1);
    expect(observe(h, 0, miss, SETTINGS, 2).lastRttMs).toBe(7.5);
  });
});

describe("choosing a path", () => {
  const at = (state: PathHealth["state"], since = 0): PathHealth => ({
    ...initialHealth(1, since),
    state,
  });

  it("leaves a path that is down for the first one up, at once", () => {
    expect(choosePath([at("down"), at("up", 9_000)], 0, 30, 10_000)).toBe(1);
  });

  it("fails closed when no path is up, and takes the first that comes up", () => {
    expect(choosePath([at("down"), at("down")], 0, 30, 10_000)).toBe("none");
    expect(choosePath([at("down"), at("up", 9_999)], "none", 30, 10_000)).toBe(1);
  });

  it("fails back to a preferred path only after it has been up for the hold time", () => {
    expect(choosePath([at("up", 0), at("up")], 1, 30, 29_999)).toBe(1);
    expect(choosePath([at("up", 0), at("up")], 1, 30, 30_000)).toBe(0);
  });

  it("keeps a path not judged yet (at start) rather than switch blind", () => {
    expect(choosePath([at("unknown"), at("up")], 0, 30, 1000)).toBe(0);
  });
});
