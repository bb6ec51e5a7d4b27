import { describe, expect, it } from "vitest";
import { EventLog } from "../../../src/server/dashboard/events.js";
import { DashboardFeed, type Snapshot } from "../../../src/server/dashboard/feed.js";
import { SeriesStore } from "../../../src/server/dashboard/series.js";
import type { SiteStatus } from "../../../src/status/collect.js";
import { homeStatus, vpsStatus } from "./statuses.js";

const timing = { activeMs: 5, idleMs: 1_000_000, now: Date.now };

function until(feed: DashboardFeed, check: (s: Snapshot) => boolean): Promise<Snapshot> {
  return new Promise((resolve) => {
    const stop = feed.subscribe((s) => {
      if (check(s)) {
        stop();
        resolve(s);
      }
    });
  });
}

describe("the page's feed", () => {
  it("looks once for every open page, and at once when a link changes", async () => {
    let looks = 0;
    let status: SiteStatus = homeStatus();
    let linkChanged: () => void = () => {};
    const feed = new DashboardFeed(
      {
        site: "home",
        local: async () => {
          looks++;
          return status;
        },
        others: async () => [],
        linkChanges: (onChange) => {
          linkChanged = onChange;
        },
      },
      new EventLog(),
      new SeriesStore(),
      { ...timing, activeMs: 1_000_000 },
    );
    const first = await feed.current();
    expect(first.sites[0]?.health).toBe("ok");
    const pages = Array.from({ length: 50 }, () => feed.subscribe(() => {}));
    await until(feed, () => true);
    const before = looks;
    const home = homeStatus();
    status = homeStatus({ tunnels: home.tunnels.map((t) => ({ ...t, up: false })) });
    const red = until(feed, (s) => s.sites[0]?.tunnels[0]?.health === "bad");
    linkChanged();
    const seen = await red;
    expect(looks).toBe(before + 1);
    expect(seen.events.map((e) => e.text)).toContain("home: tunnel npdwgh down");
    for (const stop of pages) stop();
    feed.close();
  });

  it("keeps what another site said last when it stops answering, and says why", async () => {
    let answering = true;
    const feed = new DashboardFeed(
      {
        site: "home",
        local: async () => homeStatus(),
        others: async () => [
          {
            site: "vps",
            status: async () => {
              if (!answering) throw new Error("cannot reach it: timeout");
              return vpsStatus();
            },
          },
        ],
      },
      new EventLog(),
      new SeriesStore(),
      timing,
    );
    const up = await until(feed, (s) => s.sites[1]?.state === "in sync");
    expect(up.sites[1]?.services.map((s) => s.name)).toEqual(["blog", "echo"]);
    answering = false;
    const gone = await until(feed, (s) => s.sites[1]?.state === "not reachable");
    expect(gone.sites[1]?.services.map((s) => s.name)).toEqual(["blog", "echo"]);
    expect(gone.sites[1]?.notes[0]).toContain("cannot reach it: timeout");
    expect(gone.events.map((e) => e.text)).toContain("vps: not reachable");
    feed.close();
  });
});
