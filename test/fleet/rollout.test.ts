import { describe, expect, it } from "vitest";
import type { Head, Ledger } from "../../src/fleet/documents.js";
import { gate, rolloutView } from "../../src/fleet/rollout.js";

const ledger = (
  serial: number,
  result: Ledger["result"] = "applied",
  failuresBefore = 0,
): Ledger => ({
  serial,
  result,
  failuresBefore,
  hash: "h",
  at: "2026-01-01T00:00:00Z",
});

const head = (failureBudget = 0): Head => ({
  serial: 4,
  hash: "p",
  publishedAt: "2026-01-01T00:00:00Z",
  publishedBy: "op",
  sites: ["canary", "hub", "a", "b"],
  waves: [["canary"], ["hub"], ["a", "b"]],
  failureBudget,
  healthSeconds: 30,
});

describe("a wave's gate", () => {
  const input = { serial: 4, wave: 1, after: ["c1", "c2"], failureBudget: 0 };

  it("opens the first wave at once", () => {
    expect(gate({ ...input, wave: 0, after: [] }, new Map())).toEqual({
      kind: "open",
      failuresBefore: 0,
    });
  });

  it("waits for every site of the wave before that has not reported the revision", () => {
    const g = gate(
      input,
      new Map([
        ["c1", ledger(4)],
        ["c2", ledger(3)],
      ]),
    );
    expect(g).toEqual({ kind: "waiting", waitingFor: ["c2"] });
  });

  it("opens once all reported, counting a later revision as reached", () => {
    const g = gate(
      input,
      new Map([
        ["c1", ledger(4, "unchanged")],
        ["c2", ledger(5)],
      ]),
    );
    expect(g).toEqual({ kind: "open", failuresBefore: 0 });
  });

  it("stops at a failure past the budget, even while others still apply", () => {
    const g = gate(input, new Map([["c1", ledger(4, "failed")]]));
    expect(g).toEqual({ kind: "halted", failed: ["c1"], failures: 1 });
  });

  it("carries the failures of earlier waves forward against the budget", () => {
    const within = gate(
      { ...input, failureBudget: 2 },
      new Map([
        ["c1", ledger(4, "failed", 1)],
        ["c2", ledger(4, "applied", 1)],
      ]),
    );
    expect(within).toEqual({ kind: "open", failuresBefore: 2 });
    const past = gate(
      { ...input, failureBudget: 1 },
      new Map([
        ["c1", ledger(4, "failed", 1)],
        ["c2", ledger(4, "applied", 1)],
      ]),
    );
    expect(past).toEqual({ kind: "halted", failed: ["c1"], failures: 2 });
  });
});

describe("a rollout as the reports tell it", () => {
  it("runs wave by wave and completes", () => {
    const running = rolloutView(head(), new Map([["canary", ledger(4)]]), new Map());
    expect(running.progress).toEqual({ kind: "running", wave: 1, waitingFor: ["hub"] });
    expect(running.sites.map((s) => [s.site, s.state])).toEqual([
      ["canary", "done"],
      ["hub", "pending"],
      ["a", "queued"],
      ["b", "queued"],
    ]);
    const all = new Map(["canary", "hub", "a", "b"].map((s) => [s, ledger(4)]));
    expect(rolloutView(head(), all, new Map()).progress).toEqual({ kind: "complete" });
  });

  it("stops at a failing canary and holds every later wave", () => {
    const view = rolloutView(
      head(),
      new Map([
        ["canary", ledger(4, "failed")],
        ["hub", ledger(3)],
      ]),
      new Map(),
    );
    expect(view.progress).toEqual({ kind: "halted", wave: 0, failed: ["canary"], failures: 1 });
    expect(view.sites.map((s) => s.state)).toEqual(["failed", "held", "held", "held"]);
  });

  it("ends past its budget when the last wave fails", () => {
    const ledgers = new Map([
      ["canary", ledger(4)],
      ["hub", ledger(4)],
      ["a", ledger(4, "failed")],
      ["b", ledger(4)],
    ]);
    expect(rolloutView(head(), ledgers, new Map()).progress).toEqual({
      kind: "halted",
      wave: 2,
      failed: ["a"],
      failures: 1,
    });
    expect(rolloutView(head(1), ledgers, new Map()).progress).toEqual({ kind: "complete" });
  });
});
