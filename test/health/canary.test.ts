import { describe, expect, it } from "vitest";
import { chainsOf } from "../../src/compile/chains.js";
import { compileSite } from "../../src/compile/compile.js";
import { judgeCanary, readEcho } from "../../src/health/canary.js";
import { describeHealthEvent } from "../../src/health/format.js";
import { type HealthEvent, HealthMonitor } from "../../src/health/monitor.js";
import { parseAddress } from "../../src/net/cidr.js";
import type { EgressCanary } from "../../src/policy/intent.js";
import { parsePolicy } from "../../src/policy/load.js";
import { chainPolicy, diagnosticsOf } from "../policy/fixtures.js";

const addr = (text: string) => {
  const p = parseAddress(text);
  if (!p.ok) throw new Error(text);
  return p.value;
};

const CANARY: EgressCanary = {
  url: "http://192.0.2.80/ip",
  host: addr("192.0.2.80"),
  port: 80,
  source: addr("192.168.6.1"),
  expect: [[addr("203.0.113.2")], [addr("203.0.113.70")]],
  interval: 30,
};

/** VLAN 6 by ext0, else ext1, with a canary `canary` (YAML flow text). */
const policy = (canary: string, address?: string) => chainPolicy(`canary: ${canary}`, address);
const PER_PATH =
  '{ url: "http://192.0.2.80:8080/ip", expect: { ext0: [203.0.113.2], ext1: [203.0.113.70] } }';

describe("the leak canary's verdict", () => {
  it("reads the echoed address as text or as ipify-style JSON", () => {
    expect(readEcho("203.0.113.2\n")).toBe("203.0.113.2");
    expect(readEcho('{"ip":"2001:db8::1"}')).toBe("2001:db8::1");
    expect(readEcho("<html>hello</html>")).toBeUndefined();
  });

  it("is ok when the echo shows the active path's address, and a leak (counted) otherwise", () => {
    const ok = judgeCanary(CANARY, { body: "203.0.113.2" }, 0, 0, 0, 0);
    expect(ok).toMatchObject({ state: "ok", seen: "203.0.113.2", alarms: 0 });
    // The backup's address while the provider is active is a leak too: not what the path shows.
    const wrong = judgeCanary(CANARY, { body: "203.0.113.70" }, 0, 0, 0, 0);
    expect(wrong).toMatchObject({ state: "leak", expected: ["203.0.113.2"], alarms: 1 });
    const isp = judgeCanary(CANARY, { body: "198.51.100.2" }, 0, 0, 4, 0);
    expect(isp.alarms).toBe(5);
    expect(isp.reason).toBe(
      "the echo saw 198.51.100.2, not 203.0.113.2: the egress's traffic leaves by another way",
    );
  });

  it("takes either path's address across a switch, and any answer while it fails closed as a leak", () => {
    expect(judgeCanary(CANARY, { body: "203.0.113.70" }, 0, 1, 0, 0).state).toBe("ok");
    const closed = judgeCanary(CANARY, { body: "198.51.100.2" }, "none", "none", 0, 0);
    expect(closed).toMatchObject({ state: "leak", expected: [] });
    const quiet = judgeCanary(CANARY, { error: "connect EHOSTUNREACH" }, "none", "none", 0, 0);
    expect(quiet).toMatchObject({ state: "no answer", alarms: 0, reason: "connect EHOSTUNREACH" });
  });

  it("is said by the monitor when it changes, and at every leak", () => {
    const events: HealthEvent[] = [];
    const chain = chainsFor(PER_PATH)[0];
    if (!chain) throw new Error("no chain");
    const monitor = new HealthMonitor([chain], [0], {
      switchTo: async () => {},
      clearFlows: async () => {},
      now: () => 0,
      emit: (e) => events.push(e),
    });
    const verdict = (body: string) =>
      judgeCanary(CANARY, { body }, 0, 0, monitor.canaryAlarms(0), 0);
    monitor.canaryResult(0, verdict("203.0.113.2"));
    monitor.canaryResult(0, verdict("203.0.113.2"));
    monitor.canaryResult(0, verdict("198.51.100.2"));
    monitor.canaryResult(0, verdict("198.51.100.2"));
    expect(events.map((e) => (e.event === "canary" ? `${e.state} ${e.alarms}` : e.event))).toEqual([
      "ok 0",
      "leak 1",
      "leak 2",
    ]);
    expect(monitor.snapshot()[0]?.canary?.alarms).toBe(2);
    expect(describeHealthEvent(events[2] as HealthEvent)).toBe(
      "egress out: leak canary ALARM, the echo saw 198.51.100.2 (the echo saw 198.51.100.2, not 203.0.113.2: the egress's traffic leaves by another way)",
    );
  });
});

function chainsFor(canary: string) {
  const intent = parsePolicy(policy(canary), "c.yaml").intent;
  const site = intent.sites.find((s) => s.name === "home");
  if (!site) throw new Error("no site");
  return chainsOf(intent, site);
}

describe("the leak canary in the policy", () => {
  it("marks the canary's request from the network's router address with the egress's mark", () => {
    const state = compileSite(parsePolicy(policy(PER_PATH), "c.yaml").intent, "home");
    const output = state.nftChains.find((c) => c.name === "mangle_output")?.rules ?? [];
    expect(output).toEqual([
      "ip saddr 192.168.6.1 ip daddr 192.0.2.80 tcp dport 8080 meta mark set meta mark & 0x00ffffff | 0x02000000",
    ]);
    const chain = chainsFor(PER_PATH)[0];
    expect(chain?.canary?.expect.map((l) => l.length)).toEqual([1, 1]);
    // Without a canary, no such rule.
    const plain = policy(PER_PATH).replace(/, canary: .*/, " }");
    const none = compileSite(parsePolicy(plain, "c.yaml").intent, "home");
    expect(none.nftChains.find((c) => c.name === "mangle_output")).toBeUndefined();
  });

  it("refuses a URL by name, a network without the router's address, and a path left out", () => {
    const messages = (text: string) => diagnosticsOf(text).map((d) => d.message);
    expect(
      messages(policy('{ url: "http://echo.example.org/ip", expect: [203.0.113.2] }')).join("\n"),
    ).toContain("write an http:// URL whose host is an address");
    expect(messages(policy(PER_PATH, ""))).toContain(
      "the canary asks from the router's address in the egress's network: give network files an address (networks[].address)",
    );
    expect(
      messages(policy('{ url: "http://192.0.2.80/", expect: { ext0: [203.0.113.2] } }')),
    ).toContain(
      "name the addresses the echo shows through ext1 too (or one list for the whole chain)",
    );
  });
});
