import { describe, expect, it } from "vitest";
import { transitions } from "../../../src/server/dashboard/events.js";
import { regions } from "../../../src/server/dashboard/page.js";
import { readingsOf, SeriesStore } from "../../../src/server/dashboard/series.js";
import { itemsById, sitesView } from "../../../src/server/dashboard/view.js";
import type { SiteStatus } from "../../../src/status/collect.js";
import { homeStatus, vpsStatus } from "./statuses.js";

const health = (sites: ReturnType<typeof sitesView>) =>
  Object.fromEntries([...itemsById(sites)].map(([id, i]) => [id, `${i.health} ${i.state}`]));

describe("the page's view of the status documents", () => {
  it("gives every site, tunnel, peer, egress and service a state", () => {
    const sites = sitesView({ site: "home", status: homeStatus() }, [
      { site: "vps", status: vpsStatus() },
    ]);
    expect(sites.map((s) => [s.name, s.local, s.health, s.state])).toEqual([
      ["home", true, "ok", "in sync"],
      ["vps", false, "ok", "in sync"],
    ]);
    expect(health(sites)).toEqual({
      "home/tunnel/npdwgh": "ok up",
      "home/tunnel/npdwgh/peer/vps": "ok handshake fresh",
      "home/egress/vpn": "ok up",
      "home/egress/via-vps": "ok up",
      "vps/tunnel/npdwgv": "ok up",
      "vps/tunnel/npdwgv/peer/home": "ok handshake fresh",
      "vps/service/blog": "ok reachable",
      "vps/service/echo": "ok reachable",
    });
    expect(sites[0]?.links).toEqual([
      { to: "vps", health: "ok", label: "npdwgh: handshake fresh" },
    ]);
  });

  it("says a fleet site whose agent lost etcd is stale, with the age, and not when it is in touch", () => {
    const fleet = (stale: boolean, age: number) => ({
      endpoints: ["https://192.0.2.10:2379"],
      lastContact: "2026-11-22T10:00:00.000Z",
      lastContactAgeSeconds: age,
      staleAfterSeconds: 30,
      agentRunning: true,
      stale,
      message: stale ? `fleet: STALE: last reached etcd ${age}s ago` : "fleet: fresh",
    });
    const [fresh] = sitesView({ site: "home", status: homeStatus({ fleet: fleet(false, 4) }) }, []);
    expect([fresh?.own, fresh?.notes]).toEqual(["ok", []]);
    expect(fresh?.facts).toContainEqual({ label: "etcd", value: "reached 4s ago" });
    const [cut] = sitesView({ site: "home", status: homeStatus({ fleet: fleet(true, 95) }) }, []);
    expect(cut?.own).toBe("warn");
    expect(cut?.notes).toEqual(["fleet: STALE: last reached etcd 95s ago"]);
    expect(cut?.facts).toContainEqual({ label: "etcd", value: "reached 95s ago" });
  });

  it("turns a tunnel set down, a dead egress, a missing route and an unreachable site red", () => {
    const home = homeStatus();
    const down = homeStatus({
      tunnels: home.tunnels.map((t) => ({ ...t, up: false })),
      egress: home.egress.map((e) => ({ ...e, deviceUp: false, failClosedEngaged: true })),
    });
    const vps = vpsStatus();
    const unrouted = vpsStatus({
      services: vps.services.map((s) =>
        s.proxy ? { ...s, proxy: { routed: false, upstreamFails: 2 } } : s,
      ),
    });
    const sites = sitesView({ site: "home", status: down }, [
      { site: "vps", status: unrouted, error: "cannot reach it: timeout" },
    ]);
    expect(health(sites)).toMatchObject({
      "home/tunnel/npdwgh": "bad down",
      "home/tunnel/npdwgh/peer/vps": "bad device down",
      "home/egress/vpn": "bad down, fail-closed engaged",
      "vps/service/blog": "bad route missing in Caddy",
    });
    expect(sites[1]).toMatchObject({ health: "bad", state: "not reachable" });
    expect(sites[1]?.notes[0]).toContain("cannot reach it: timeout");
  });

  it("shows an egress chain's active path and each path's health, and plots each path's RTT", () => {
    const home = homeStatus();
    const chain = homeStatus({
      egress: [
        {
          ...(home.egress[0] as SiteStatus["egress"][number]),
          device: "wg-vps",
          health: {
            active: "wg-vps",
            switches: 1,
            lastSwitchAt: "2026-11-22T10:00:30.000Z",
            judgedBy: "monitor",
            paths: [
              {
                device: "npdhma",
                state: "down",
                lastRttMs: null,
                misses: 3,
                handshakeAgeSeconds: null,
                reason: "no answer from 198.51.100.9",
              },
              {
                device: "wg-vps",
                state: "up",
                lastRttMs: 12,
                misses: 0,
                handshakeAgeSeconds: 4,
                reason: null,
              },
            ],
          },
        },
      ],
    });
    const sites = sitesView({ site: "home", status: chain }, []);
    expect(health(sites)).toMatchObject({
      "home/egress/vpn": "ok up",
      "home/egress/vpn/path/npdhma": "bad down",
      "home/egress/vpn/path/wg-vps": "ok active, up",
    });
    expect(sites[0]?.egress[0]?.facts).toContainEqual({ label: "active path", value: "wg-vps" });
    const store = new SeriesStore();
    store.record(1000, readingsOf("home", chain));
    expect(store.all().map((x) => [x.title, x.points.at(-1)?.value])).toContainEqual([
      "home: egress vpn path wg-vps probe RTT",
      12,
    ]);
    const closed = homeStatus({
      egress: [
        {
          ...(chain.egress[0] as SiteStatus["egress"][number]),
          health: {
            ...(chain.egress[0]?.health as NonNullable<SiteStatus["egress"][number]["health"]>),
            active: null,
          },
        },
      ],
    });
    expect(health(sitesView({ site: "home", status: closed }, []))["home/egress/vpn"]).toBe(
      "bad no path up, fail-closed engaged",
    );
  });

  it("tells what changed between two looks as events, and nothing when nothing did", () => {
    const before = sitesView({ site: "home", status: homeStatus() }, []);
    const home = homeStatus();
    const after = sitesView(
      {
        site: "home",
        status: homeStatus({ tunnels: home.tunnels.map((t) => ({ ...t, up: false })) }),
      },
      [],
    );
    expect(transitions(before, before)).toEqual([]);
    expect(transitions(before, after).map((e) => `${e.level} ${e.text}`)).toEqual([
      "bad home: tunnel npdwgh down",
      "bad home: peer vps device down",
    ]);
    expect(transitions(after, before).map((e) => `${e.level} ${e.text}`)).toEqual([
      "info home: tunnel npdwgh up",
      "info home: peer vps handshake fresh",
    ]);
    const gone = sitesView({ site: "home", status: homeStatus({ tunnels: [] }) }, []);
    expect(transitions(before, gone).map((e) => e.text)).toEqual([
      "home: tunnel npdwgh gone",
      "home: peer vps gone",
    ]);
  });

  it("escapes what the policy and the peers say, in text and attributes", () => {
    const hostile = '<img src=x onerror="alert(1)">';
    const sites = sitesView(
      {
        site: "home",
        status: homeStatus({
          policy: {
            hash: "a".repeat(64),
            appliedAt: "2026-11-22T10:00:00.000Z",
            appliedBy: hostile,
          },
        }),
      },
      [{ site: "vps", error: hostile }],
    );
    const out = Object.values(
      regions({ at: 0, sites, events: [], series: [] }, { role: "admin", csrf: '"><b>' }),
    )
      .map((h) => h.text)
      .join("");
    expect(out).not.toContain("<img");
    expect(out).not.toContain('"><b>');
    expect(out).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  });

  it("shows buttons to the full token's session only", () => {
    const status = homeStatus({
      pendingConfirm: {
        deadline: "2026-11-22T10:05:00.000Z",
        policyHash: "b".repeat(64),
        appliedBy: "x",
        message: "",
      },
    });
    const s = { at: 0, sites: sitesView({ site: "home", status }, []), events: [], series: [] };
    const admin = regions(s, { role: "admin", csrf: "t" });
    expect(admin.pending.text).toContain('action="/confirm"');
    expect(admin.pending.text).toContain('action="/revert"');
    expect(admin.summary.text).toContain('action="/reapply"');
    const viewer = regions(s, { role: "viewer", csrf: "" });
    expect(`${viewer.pending.text}${viewer.summary.text}`).not.toContain("<form");
  });
});

describe("the series kept in memory", () => {
  it("plots a counter as its rate, skipping the first reading and a counter that went back", () => {
    const store = new SeriesStore();
    const reading = (value: number) => [
      { key: "k", title: "t", unit: "B/s", kind: "counter" as const, value },
    ];
    store.record(1000, reading(100));
    store.record(2000, reading(600));
    store.record(4000, reading(1600));
    store.record(5000, reading(10));
    store.record(6000, reading(110));
    expect(store.all()[0]?.points).toEqual([
      { at: 2000, value: 500 },
      { at: 4000, value: 500 },
      { at: 6000, value: 100 },
    ]);
  });

  it("keeps ten minutes", () => {
    const store = new SeriesStore();
    for (let m = 0; m <= 20; m++)
      store.record(m * 60_000, [{ key: "g", title: "t", unit: "ms", kind: "gauge", value: m }]);
    expect(store.all()[0]?.points.map((p) => p.value)).toEqual([
      10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
    ]);
  });
});
