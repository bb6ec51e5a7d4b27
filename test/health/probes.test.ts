import { describe, expect, it } from "vitest";
import { chainsOf } from "../../src/compile/chains.js";
import { compileSite } from "../../src/compile/compile.js";
import { type HealthEvent, HealthMonitor } from "../../src/health/monitor.js";
import { parsePolicy } from "../../src/policy/load.js";
import { readConnectLine } from "../../src/system/connect-prober.js";
import { chainPolicy, diagnosticsOf } from "../policy/fixtures.js";

/** VLAN 6 by ext0, else ext1, with `probe` under health. */
const policy = (probe: string) => chainPolicy(`health: { probe: ${probe} }`);
const PER_PATH = '{ ext1: { kind: tcp, target: "203.0.113.10:443" } }';

const chainOf = (probe: string) => {
  const intent = parsePolicy(policy(probe), "p.yaml").intent;
  const site = intent.sites.find((s) => s.name === "home");
  const chain = site ? chainsOf(intent, site)[0] : undefined;
  if (!chain) throw new Error("no chain");
  return { intent, chain };
};

describe("TCP and HTTP probes of a path", () => {
  it("probe a path by its own target from netpol's port for it; other paths keep ICMP", () => {
    const { intent, chain } = chainOf(PER_PATH);
    expect(chain.paths[0]?.probe).toBeUndefined();
    expect(chain.paths[0]?.targets).toHaveLength(1); // its gateway, by ICMP
    expect(chain.paths[1]?.probe).toMatchObject({ kind: "tcp", port: 443, localPort: 61001 });
    expect(chain.paths[1]?.targets).toEqual([chain.paths[1]?.probe?.host]);
    // The probe's packets get the path's mark, so they take its table.
    const output = compileSite(intent, "home").nftChains.find((c) => c.name === "mangle_output");
    expect(output?.rules).toEqual([
      `ip daddr 203.0.113.10 tcp dport 443 tcp sport 61001 meta mark set meta mark & 0x00ffffff | 0x${chain.paths[1]?.mark.toString(16).padStart(8, "0")}`,
    ]);
  });

  it("takes one probe for every path, and an HTTP URL", () => {
    const { chain } = chainOf('{ kind: http, url: "http://192.0.2.80:8080/health" }');
    expect(chain.paths.map((p) => p.probe?.url)).toEqual([
      "http://192.0.2.80:8080/health",
      "http://192.0.2.80:8080/health",
    ]);
    expect(chain.paths.map((p) => p.probe?.localPort)).toEqual([61000, 61001]);
  });

  it("refuses a target by name and a path the egress does not have", () => {
    const messages = (probe: string) => diagnosticsOf(policy(probe)).map((d) => d.message);
    expect(messages('{ ext1: { kind: tcp, target: "vpn.example.org:443" } }')).toContain(
      "vpn.example.org is a name; write the probe target as an address, e.g. 203.0.113.10:443",
    );
    expect(messages('{ ext9: { kind: tcp, target: "203.0.113.10:443" } }')).toContain(
      "ext9 is not a path of this egress; name one of: ext0, ext1",
    );
  });

  it("reads the prober's lines, and judges them with the same hysteresis as ICMP", async () => {
    const { chain } = chainOf(PER_PATH);
    const t = {
      kind: "tcp" as const,
      host: chain.paths[1]?.probe?.host ?? { family: 4 as const, address: 0n },
      port: 443,
      device: "ext1",
      localPort: 61001,
      intervalSeconds: 1,
    };
    expect(readConnectLine("ok 12", t)).toEqual({ ok: true, rttMs: 12 });
    expect(readConnectLine("miss ECONNREFUSED", t)).toEqual({
      ok: false,
      reason: "ECONNREFUSED from tcp 203.0.113.10:443",
    });
    expect(readConnectLine("something else", t)).toBeUndefined();
    const events: HealthEvent[] = [];
    const monitor = new HealthMonitor([chain], [1], {
      switchTo: async () => {},
      clearFlows: async () => {},
      now: () => 0,
      emit: (e) => events.push(e),
    });
    const connect = (line: string) => {
      const result = readConnectLine(line, t);
      if (result) monitor.report({ chain: 0, path: 1, target: 0, result });
    };
    for (let i = 0; i < 3; i++) connect("ok 5");
    expect(monitor.snapshot()[0]?.paths[1]?.state).toBe("up");
    connect("miss ECONNREFUSED");
    expect(monitor.snapshot()[0]?.paths[1]?.state).toBe("up");
    connect("miss ECONNREFUSED");
    expect(monitor.snapshot()[0]?.paths[1]).toMatchObject({
      state: "down",
      reason: "ECONNREFUSED from tcp 203.0.113.10:443",
    });
    await monitor.idle();
  });
});
