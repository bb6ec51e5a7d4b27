import { describe, expect, it } from "vitest";
import { type ChainSpec, chainsOf } from "../../src/compile/chains.js";
import type { Active } from "../../src/health/choose.js";
import { type HealthEvent, HealthMonitor } from "../../src/health/monitor.js";
import { handshakeAge } from "../../src/health/path-health.js";
import { labPolicy, withFailover } from "../../src/lab/policy.js";
import { labNames } from "../../src/lab/topology.js";
import { parsePolicy } from "../../src/policy/load.js";
import { KEYS } from "../policy/fixtures.js";

const CHAIN: ChainSpec = {
  name: "vpn",
  table: 3,
  families: [4],
  paths: [
    { device: "tun-hma", hops: { 4: { device: "tun-hma" } }, mark: 0x4000000, targets: [] },
    { device: "wg-vps", hops: { 4: { device: "wg-vps" } }, mark: 0x6000000, targets: [] },
  ],
  health: {
    targets: [],
    interval: 1,
    downAfter: 2,
    upAfter: 3,
    hold: 10,
    handshakeMaxAge: 200,
    probes: [],
  },
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

describe("a WireGuard path's handshake age", () => {
  it("takes a path whose handshake is too old down while its probes answer, and brings it back with fresh answers", async () => {
    // Path 0 as the WireGuard path here: the same monitor judges it whatever its device.
    const { monitor, kernel, events, second, time } = rig();
    for (let i = 0; i < 3; i++) await second(true, true);
    // A fake clock: the handshake was at 1 s, the clock reads 3 s, then 203 s.
    const latest = 1;
    monitor.handshake(0, 0, handshakeAge(latest, time()));
    await monitor.idle();
    expect(kernel).toEqual([]);
    for (let i = 0; i < 200; i++) await second(true, true);
    expect(handshakeAge(latest, time())).toBe(202);
    monitor.handshake(0, 0, handshakeAge(latest, time()));
    await monitor.idle();
    expect(kernel).toEqual(["switch 1", "clear"]);
    expect(events).toContainEqual(
      expect.objectContaining({
        event: "path",
        path: "tun-hma",
        state: "down",
        reason: "handshake 202 s old",
      }),
    );
    // Probes still answer: a stale path stays down, with its reason.
    await second(true, true);
    expect(monitor.snapshot()[0]?.paths[0]).toMatchObject({
      state: "down",
      reason: "handshake 202 s old",
    });
    // A fresh handshake: up again after upAfter fresh answers, and back after the hold.
    monitor.handshake(0, 0, handshakeAge(time() / 1000 - 1, time()));
    await second(true, true);
    await second(true, true);
    expect(monitor.snapshot()[0]?.paths[0]?.state).toBe("down");
    await second(true, true);
    expect(monitor.snapshot()[0]?.paths[0]).toMatchObject({ state: "up", reason: null });
    for (let i = 0; i < 10; i++) await second(true, true);
    expect(kernel).toEqual(["switch 1", "clear", "switch 0", "clear"]);
  });

  it("says nothing of a path that never shook hands (probes judge it) or one just within the limit", () => {
    expect(handshakeAge(0, 5_000)).toBeNull();
    const { monitor } = rig();
    monitor.handshake(0, 0, null);
    monitor.handshake(0, 1, 200);
    expect(monitor.snapshot()[0]?.paths.map((p) => p.state)).toEqual(["unknown", "unknown"]);
    monitor.handshake(0, 1, 201);
    expect(monitor.snapshot()[0]?.paths[1]).toMatchObject({
      state: "down",
      reason: "handshake 201 s old",
    });
  });

  it("is read for the tunnels of the policy: a chain's WireGuard path names its exit peer", () => {
    const text = labPolicy(labNames("x"), KEYS);
    const intent = parsePolicy(withFailover(text, labNames("x")), "lab.yaml").intent;
    const home = intent.sites.find((s) => s.name === "home");
    const chain = home ? chainsOf(intent, home)[0] : undefined;
    expect(chain?.paths.map((p) => p.wireguard)).toEqual([undefined, { peer: KEYS.vps }]);
    expect(chain?.health.handshakeMaxAge).toBe(200);
  });
});
