import { describe, expect, it } from "vitest";
import type { ChainSpec } from "../../src/compile/chains.js";
import type { Active } from "../../src/health/choose.js";
import { type HealthEvent, HealthMonitor } from "../../src/health/monitor.js";

const CHAIN: ChainSpec = {
  name: "vpn",
  table: 3,
  families: [4],
  paths: [
    { device: "tun-hma", hops: { 4: { device: "tun-hma" } }, mark: 0x4000000, targets: [] },
    { device: "wg-vps", hops: { 4: { device: "wg-vps" } }, mark: 0x6000000, targets: [] },
  ],
  health: { targets: [], interval: 1, downAfter: 2, upAfter: 3, hold: 10 },
  connMark: 0x2000000,
  mask: 0xff000000,
};
for (const p of CHAIN.paths) (p.targets as unknown[]).push({ family: 4, address: 1n });

/** A monitor on a clock the test moves, recording what it asks of the kernel. */
function rig(initial: Active = 0) {
  let now = 0;
  const kernel: string[] = [];
  const events: HealthEvent[] = [];
  const monitor = new HealthMonitor([CHAIN], [initial], {
    switchTo: async (_c, a) => void kernel.push(`switch ${a}`),
    clearFlows: async () => void kernel.push("clear"),
    now: () => now,
    emit: (e) => events.push(e),
  });
  /** One probe round a second: `answers[i]` says whether path i answered. */
  const second = async (...answers: boolean[]) => {
    now += 1000;
    answers.forEach((ok, path) => {
      monitor.report({
        chain: 0,
        path,
        target: 0,
        result: ok ? { ok: true, rttMs: 5 } : { ok: false, reason: "no answer" },
      });
    });
    await monitor.idle();
  };
  return { monitor, kernel, events, second, time: () => now };
}

describe("the health monitor", () => {
  it("switches to the backup once the active path is down, and clears the flows after", async () => {
    const { kernel, events, second, monitor } = rig();
    for (let i = 0; i < 3; i++) await second(true, true);
    expect(kernel).toEqual([]);
    await second(false, true);
    expect(kernel).toEqual([]);
    await second(false, true);
    expect(kernel).toEqual(["switch 1", "clear"]);
    expect(events).toContainEqual(
      expect.objectContaining({
        event: "switch",
        from: "tun-hma",
        to: "wg-vps",
        reason: "tun-hma is down (no answer)",
      }),
    );
    expect(monitor.snapshot()[0]).toMatchObject({
      active: "wg-vps",
      switches: 1,
      paths: [
        { device: "tun-hma", state: "down", misses: 2 },
        { device: "wg-vps", state: "up", lastRttMs: 5 },
      ],
    });
  });

  it("fails back after the hold time, not before", async () => {
    const { kernel, second } = rig(1);
    for (let i = 0; i < 3; i++) await second(true, true);
    // tun-hma came up at 3 s; hold is 10 s.
    for (let i = 0; i < 9; i++) await second(true, true);
    expect(kernel).toEqual([]);
    await second(true, true);
    expect(kernel).toEqual(["switch 0", "clear"]);
  });

  it("fails closed with every path down, and recovers on the first path up", async () => {
    const { kernel, second, monitor } = rig();
    for (let i = 0; i < 3; i++) await second(true, true);
    // The backup dies first: nothing to do while the active path works.
    await second(true, false);
    await second(true, false);
    expect(kernel).toEqual([]);
    await second(false, false);
    await second(false, false);
    expect(kernel).toEqual(["switch none", "clear"]);
    expect(monitor.snapshot()[0]?.active).toBeNull();
    for (let i = 0; i < 3; i++) await second(false, true);
    expect(kernel).toEqual(["switch none", "clear", "switch 1", "clear"]);
  });

  it("stays where it is when a switch fails, and says so", async () => {
    const events: HealthEvent[] = [];
    let now = 0;
    const monitor = new HealthMonitor([CHAIN], [0], {
      switchTo: async () => {
        throw new Error("ip: RTNETLINK answers: No such device");
      },
      clearFlows: async () => {},
      now: () => now,
      emit: (e) => events.push(e),
    });
    for (let i = 0; i < 3; i++) {
      now += 1000;
      monitor.report({ chain: 0, path: 1, target: 0, result: { ok: true, rttMs: 1 } });
    }
    for (let i = 0; i < 2; i++) {
      now += 1000;
      monitor.report({ chain: 0, path: 0, target: 0, result: { ok: false, reason: "x" } });
    }
    await monitor.idle();
    expect(monitor.snapshot()[0]?.active).toBe("tun-hma");
    expect(events).toContainEqual(expect.objectContaining({ event: "switch-failed" }));
  });
});
