import { describe, expect, it } from "vitest";
import type { Head, Ledger, Live } from "../../src/fleet/documents.js";
import { type Fleet, fleetRows, fleetSettled } from "../../src/fleet/view.js";

const NOW = Date.parse("2026-12-07T04:00:00Z");
const head = (serial: number, sites: string[]): Head => ({
  serial,
  hash: "h",
  publishedAt: "2026-12-07T03:59:00Z",
  publishedBy: "test",
  sites,
  waves: [sites],
  failureBudget: 0,
  healthSeconds: 0,
});
const ledger = (serial: number, result: Ledger["result"] = "applied"): Ledger => ({
  serial,
  result,
  failuresBefore: 0,
  hash: "h",
  at: "2026-12-07T03:59:30Z",
});
const live = (serial: number, state: Live["state"] = "in force"): Live => ({
  serial,
  state,
  drift: 0,
  tunnels: { up: 1, of: 1 },
  at: "2026-12-07T03:59:50Z",
  version: "0.1.0",
});
const fleet = (
  h: Head | undefined,
  reports: Record<string, { ledger?: Ledger; live?: Live }>,
): Fleet => ({
  revision: 9,
  head: h,
  ledgers: new Map(
    Object.entries(reports).flatMap(([s, r]) => (r.ledger ? [[s, r.ledger] as const] : [])),
  ),
  lives: new Map(
    Object.entries(reports).flatMap(([s, r]) => (r.live ? [[s, r.live] as const] : [])),
  ),
});
const settled = (f: Fleet) => fleetSettled(fleetRows(f, NOW), f.head?.serial);

describe("status --fleet: settled or not (its exit code)", () => {
  it("is settled when every site runs the head's revision in force", () => {
    const f = fleet(head(3, ["a", "b"]), {
      a: { ledger: ledger(3), live: live(3) },
      b: { ledger: ledger(3), live: live(3) },
    });
    expect(settled(f)).toBe(true);
    expect(fleetRows(f, NOW).map((r) => r.reportAgeSeconds)).toEqual([10, 10]);
  });

  it("is not settled while a site is behind, held, failed, silent or never reported", () => {
    const ok = { ledger: ledger(3), live: live(3) };
    for (const b of [
      { ledger: ledger(2), live: live(2) },
      { ledger: ledger(2), live: live(2, "held") },
      { ledger: ledger(3, "failed"), live: live(3, "failed") },
      { ledger: ledger(3) },
      {},
    ])
      expect(settled(fleet(head(3, ["a", "b"]), { a: ok, b }))).toBe(false);
  });

  it("is not settled when nothing was published", () => {
    expect(settled(fleet(undefined, {}))).toBe(false);
  });
});
