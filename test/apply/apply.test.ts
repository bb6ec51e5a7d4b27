import { existsSync } from "node:fs";
import { execa } from "execa";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applySite, planSite } from "../../src/apply/apply.js";
import { STEPS } from "../../src/apply/execute.js";
import { NetpolError } from "../../src/errors.js";
import type { Lab } from "../../src/lab/lab.js";
import { describeChange } from "../../src/plan/format.js";
import { createRunner, type Runner } from "../../src/system/runner.js";
import {
  deleteFailClosedRoute,
  emptyInput,
  homeArgs,
  labInput,
  siteTarget,
  startLab,
} from "../support/lab.js";
import { ownedSnapshot } from "../support/live.js";

/** A runner that fails every command of one apply step, as a broken tool would. */
function failingAt(step: string, inner: Runner): Runner {
  return {
    netns: inner.netns,
    get spawned() {
      return inner.spawned;
    },
    run: (tool, args, options) =>
      options?.step === step
        ? Promise.reject(new NetpolError("NETPOL_E_TOOL_FAILED", `injected failure in ${step}`))
        : inner.run(tool, args, options),
  };
}

const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

describe("apply on a live namespace", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let home: string;

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    home = lab.names.ns("home");
  });
  afterAll(async () => {
    await down?.();
  });
  beforeEach(async () => {
    await applySite(siteTarget(lab, "home"), emptyInput(lab, "home"), "test");
  });

  const cli = (verb: string, ...extra: string[]) => netpol([verb, ...homeArgs(lab), ...extra]);

  it("converges: plan exits 2, apply exits 0, then plan exits 0 and a second apply changes nothing", async () => {
    expect((await cli("plan")).exitCode).toBe(2);
    const applied = await cli("apply");
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect((await cli("plan")).exitCode).toBe(0);
    const again = await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    expect(again.plan.changes.map((c) => describeChange(c, 77))).toEqual([]);
    expect(again.changed).toBe(false);
    expect(again.plan.changes).toEqual([]);
  });

  it("plan exits 1 on an error, and --json lists the pending changes", async () => {
    const bad = await netpol(["plan", "/nonexistent.yaml", "--site", "home", "--netns", home]);
    expect(bad.exitCode).toBe(1);
    const json = await cli("plan", "--json");
    expect(json.exitCode).toBe(2);
    const plan = JSON.parse(json.stdout) as {
      inSync: boolean;
      changes: { op: string; what: string }[];
    };
    expect(plan.inSync).toBe(false);
    expect(plan.changes).toContainEqual({
      op: "add",
      kind: "rule",
      what: expect.stringContaining("lookup 3"),
    });
  });

  it("puts back an owned route deleted by hand, and removes what the policy drops", async () => {
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    await deleteFailClosedRoute(lab);
    expect((await cli("plan")).exitCode).toBe(2);
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    expect((await ownedSnapshot(home)).routes).toContain("unreachable default table 3");
    const moved = labInput(lab, "home", (t) => t.replace("table: 3", "table: 7"));
    await applySite(siteTarget(lab, "home"), moved, "test");
    const routes = (await ownedSnapshot(home)).routes;
    expect(routes).toContain("table 7");
    expect(routes).not.toContain("table 3");
  });

  it("never touches state it does not own, even when the policy is emptied", async () => {
    const foreign = [
      ["route", "add", "10.123.0.0/24", "via", "198.51.100.1", "proto", "static"],
      ["route", "add", "table", "42", "10.124.0.0/24", "via", "198.51.100.1"],
      ["rule", "add", "priority", "5000", "from", "10.200.0.0/16", "lookup", "42"],
    ];
    for (const args of foreign) await execa("ip", ["-n", home, ...args]);
    const theirs = async () => {
      const r = (args: string[]) => execa("ip", ["-n", home, ...args]).then((x) => x.stdout);
      const nft = await execa("ip", [
        "netns",
        "exec",
        home,
        "nft",
        "list",
        "table",
        "ip",
        "labnat",
      ]);
      return [
        await r(["route", "show", "10.123.0.0/24"]),
        await r(["route", "show", "table", "42"]),
        await r(["rule", "show", "priority", "5000"]),
        nft.stdout,
      ];
    };
    const before = await theirs();
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    expect(await theirs()).toEqual(before);
    await applySite(siteTarget(lab, "home"), emptyInput(lab, "home"), "test");
    expect(await theirs()).toEqual(before);
    const after = await ownedSnapshot(home);
    expect(after.routes).toBe("");
    expect(after.rules).not.toContain("proto 77");
    expect(after.nft).not.toContain("table inet netpol");
    expect(after.links).not.toContain(lab.names.wgHome);
    expect(after.addresses).not.toContain("192.168.6.1/24");
  });

  it("refuses a table id that holds someone else's routes, and applies nothing", async () => {
    await execa("ip", [
      "-n",
      home,
      "route",
      "add",
      "table",
      "3",
      "10.125.0.0/24",
      "via",
      "198.51.100.1",
    ]);
    try {
      const before = await ownedSnapshot(home);
      await expect(
        applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test"),
      ).rejects.toMatchObject({
        code: "NETPOL_E_FOREIGN_STATE",
      });
      expect(await ownedSnapshot(home)).toEqual(before);
    } finally {
      await execa("ip", ["-n", home, "route", "del", "table", "3", "10.125.0.0/24"]);
    }
  });

  // Creating state exercises every step but link removal; removing it exercises that one.
  // Home publishes nothing: the proxy step is tested on the VPS's Caddy (test/e2e/proxy.test.ts).
  for (const step of STEPS.filter((s) => s !== "proxy")) {
    it(`restores the previous owned state when the ${step} step fails`, async () => {
      const fromFull = step === "link removal";
      if (fromFull) await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
      const next = fromFull ? emptyInput(lab, "home") : labInput(lab, "home");
      const before = await ownedSnapshot(home);
      const target = siteTarget(lab, "home", failingAt(step, createRunner(home)));
      const err = await applySite(target, next, "test").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NetpolError);
      expect((err as NetpolError).code).toBe("NETPOL_E_APPLY_FAILED");
      expect((err as NetpolError).message).toContain(`injected failure in ${step}`);
      expect(await ownedSnapshot(home)).toEqual(before);
    });
  }

  it("runs as many processes for 40 egress policies as for 2", async () => {
    const many = (n: number) =>
      labInput(lab, "home", (t) => {
        const nets = Array.from(
          { length: n },
          (_, i) => `      - { name: n${i}, cidr: 10.200.${i}.0/24, interface: lan }`,
        );
        const egress = Array.from(
          { length: n },
          (_, i) =>
            `      - { name: x${i}, from: [n${i}], via: ${lab.names.hma}, except: [10.${i}.0.0/16], table: ${50 + i}, priority: ${2000 + 2 * i} }`,
        );
        return t
          .replace("    networks:\n", `    networks:\n${nets.join("\n")}\n`)
          .replace("    egress:\n", `    egress:\n${egress.join("\n")}\n`);
      });
    const count = async (n: number) => {
      await applySite(siteTarget(lab, "home"), emptyInput(lab, "home"), "test");
      const runner = createRunner(home);
      await applySite(siteTarget(lab, "home", runner), many(n), "test");
      return runner.spawned;
    };
    const small = await count(2);
    const large = await count(40);
    expect(large).toBe(small);
    // Per egress table (each `except` list differs, so none share): the marked `except` rule
    // and the table's rule, however many prefixes; plus the reply mark.
    expect((await ownedSnapshot(home)).rules?.match(/proto 77/g)?.length).toBe(1 + 2 * 41);
  });

  it("lets one of two simultaneous applies run and refuses the other with a clear message", async () => {
    const results = await Promise.allSettled([
      applySite(siteTarget(lab, "home"), labInput(lab, "home"), "a"),
      applySite(siteTarget(lab, "home"), labInput(lab, "home"), "b"),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: "NETPOL_E_LOCKED" });
    expect(String(refused.reason.message)).toMatch(/another apply \(pid \d+\) is running/);
    expect((await cli("plan")).exitCode).toBe(0);
  });

  it("reverts an apply that is not confirmed in time, and keeps one that is", async () => {
    const before = await ownedSnapshot(home);
    const unconfirmed = await cli("apply", "--confirm", "2");
    expect(unconfirmed.exitCode, unconfirmed.stderr).toBe(0);
    expect(unconfirmed.stdout).toContain("netpol confirm");
    expect((await ownedSnapshot(home)).rules).toContain("lookup 3");
    // The revert comes 2 s after the apply finished, from a process of its own.
    const pending = `${lab.dir}/state/netns-${home}.pending.json`;
    const giveUp = Date.now() + 15_000;
    while (existsSync(pending) && Date.now() < giveUp) await new Promise((r) => setTimeout(r, 100));
    expect(await ownedSnapshot(home)).toEqual(before);

    const kept = await cli("apply", "--confirm", "2");
    expect(kept.exitCode, kept.stderr).toBe(0);
    const confirmed = await netpol(["confirm", "--netns", home, "--state-dir", `${lab.dir}/state`]);
    expect(confirmed.exitCode, confirmed.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await ownedSnapshot(home)).rules).toContain("lookup 3");
    expect((await cli("plan")).exitCode).toBe(0);
    const nothing = await netpol(["confirm", "--netns", home, "--state-dir", `${lab.dir}/state`]);
    expect(nothing.exitCode).toBe(1);
    expect(nothing.stderr).toContain("no apply");
  });

  it("plans only what is in the policy for a site it is asked about", async () => {
    const { plan } = await planSite(siteTarget(lab, "home"), labInput(lab, "home"));
    expect(plan.site).toBe("home");
    expect(plan.conflicts).toEqual([]);
  });
});
