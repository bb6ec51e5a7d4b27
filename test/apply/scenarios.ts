import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { takeDown } from "../../src/apply/down.js";
import { STEPS } from "../../src/apply/execute.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { loadRecord, recordPath } from "../../src/apply/state/record.js";
import { compileSite } from "../../src/compile/compile.js";
import { NetpolError } from "../../src/errors.js";
import type { Lab } from "../../src/lab/lab.js";
import { describeChange } from "../../src/plan/format.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { type Runner, withRun } from "../../src/system/runner.js";
import { withSecretFile } from "../../src/system/secret-file.js";
import { deleteFailClosedRoute, emptyInput, labInput, siteTarget } from "../support/lab.js";
import type { LabHome } from "../support/lab-home.js";
import { ipJson, ownedSnapshot, routes, rules, type TestNode } from "../support/node.js";

/** A runner that fails each command `fails` picks, as a broken tool would. */
export function failingWhen(
  fails: (...call: Parameters<Runner["run"]>) => boolean,
  inner: Runner,
  what: string,
): Runner {
  return withRun(inner, (tool, args, options) =>
    fails(tool, args, options)
      ? Promise.reject(new NetpolError("NETPOL_E_TOOL_FAILED", `injected failure in ${what}`))
      : inner.run(tool, args, options),
  );
}

/** A runner that fails every command of one apply step. */
export function failingAt(step: string, inner: Runner): Runner {
  return failingWhen((_tool, _args, options) => options?.step === step, inner, step);
}

/**
 * Apply, convergence, ownership, conflicts, rollback after a failure in each step, process
 * count and the lock: the same scenarios on the fake kernel (unit layer) and on the lab.
 */
export function applyScenarios(start: () => Promise<LabHome>): () => LabHome {
  let lab: Lab;
  let node: TestNode;
  let down: () => Promise<void>;
  let home: LabHome;

  beforeAll(async () => {
    home = await start();
    ({ lab, node, down } = home);
  });
  afterAll(async () => {
    await down?.();
  });
  const target = (runner = node.runner()) => siteTarget(lab, "home", runner);
  beforeEach(async () => {
    await applySite(target(), emptyInput(lab, "home"), "test");
  });

  it("converges: a plan with changes, an apply, then nothing left to plan or apply", async () => {
    expect((await planSite(target(), labInput(lab, "home"))).plan.changes).not.toEqual([]);
    await applySite(target(), labInput(lab, "home"), "test");
    expect((await planSite(target(), labInput(lab, "home"))).plan.changes).toEqual([]);
    const again = await applySite(target(), labInput(lab, "home"), "test");
    expect(again.plan.changes.map((c) => describeChange(c, 77))).toEqual([]);
    expect(again.changed).toBe(false);
  });

  it("changes one set element in place of a listing, and then is in sync", async () => {
    await applySite(target(), labInput(lab, "home"), "test");
    const edited = labInput(lab, "home", (t) =>
      t.replace("except: [192.168.0.0/16]", "except: [192.168.0.0/16, 198.18.0.0/15]"),
    );
    const { changes } = (await planSite(target(), edited)).plan;
    // The rules are the same: only the except set's elements and a route for the new prefix.
    expect(changes.flatMap((c) => (c.kind === "nft" ? [c.reason] : []))).toEqual([
      "set elements differ",
    ]);
    // The plan names the element, against the kernel's own listing of the (auto-merge) set.
    expect(changes.flatMap((c) => (c.kind === "nft" ? (c.details ?? []) : []))).toEqual([
      expect.stringMatching(/^set egress_\S+_except4: \+ 198\.18\.0\.0\/15$/),
    ]);
    // The rules it had are the rules it has: no `nft -t` listing after the write.
    const noTerse = failingWhen(
      (tool, args) => tool === "nft" && args.includes("-t"),
      node.runner(),
      "nft -t",
    );
    await applySite(target(noTerse), edited, "test");
    expect((await planSite(target(), edited)).plan.changes).toEqual([]);
    const table = await node.runner().run("nft", ["list", "table", "inet", "netpol"]);
    expect(table.stdout).toContain("198.18.0.0/15");
  });

  it("reads a record that holds the whole nft listing, as earlier versions wrote it", async () => {
    await applySite(target(), labInput(lab, "home"), "test");
    const file = recordPath(target().files);
    const { nftSkeleton, ...record } = JSON.parse(await readFile(file, "utf8"));
    expect(nftSkeleton).toContain("chain");
    const listing = await node.runner().run("nft", ["list", "table", "inet", "netpol"]);
    await writeFile(file, JSON.stringify({ ...record, nftListing: listing.stdout }));
    expect((await loadRecord(target().files))?.ownership.nftSkeleton).toBe(nftSkeleton);
    expect((await planSite(target(), labInput(lab, "home"))).plan.changes).toEqual([]);
  });

  it("says a bad policy is bad before a tool that failed meanwhile, and applies nothing", async () => {
    const before = await ownedSnapshot(node);
    // Validation outlasts the reads it overlaps: the policy is found bad after nft failed.
    const bad = () =>
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new NetpolError("NETPOL_E_POLICY_INVALID", "policy.yaml")), 50),
      );
    const broken = failingWhen((tool) => tool === "nft", node.runner(), "nft");
    const invalid = { code: "NETPOL_E_POLICY_INVALID" };
    await expect(planSite(target(broken), bad)).rejects.toMatchObject(invalid);
    await expect(applySite(target(broken), bad, "test")).rejects.toMatchObject(invalid);
    expect(await ownedSnapshot(node)).toEqual(before);
  });

  it("puts back an owned route deleted by hand, and removes what the policy drops", async () => {
    await applySite(target(), labInput(lab, "home"), "test");
    await deleteFailClosedRoute(node);
    expect((await planSite(target(), labInput(lab, "home"))).plan.changes).not.toEqual([]);
    await applySite(target(), labInput(lab, "home"), "test");
    expect((await ownedSnapshot(node)).routes).toContainEqual(
      expect.objectContaining({ type: "7", dst: "default", table: "3" }),
    );
    const moved = labInput(lab, "home", (t) => t.replace("table: 3", "table: 7"));
    await applySite(target(), moved, "test");
    const tables = (await ownedSnapshot(node)).routes.map((r) => r.table);
    expect(tables).toContain("7");
    expect(tables).not.toContain("3");
  });

  it("never touches state it does not own, even when the policy is emptied", async () => {
    const foreign = [
      ["route", "add", "10.123.0.0/24", "via", "198.51.100.1", "proto", "static"],
      ["route", "add", "table", "42", "10.124.0.0/24", "via", "198.51.100.1"],
      ["rule", "add", "priority", "5000", "from", "10.200.0.0/16", "lookup", "42"],
    ];
    for (const args of foreign) await node.run("ip", args);
    const theirs = async () => [
      (await routes(node)).filter((r) => r.dst === "10.123.0.0/24" || r.table === "42"),
      (await rules(node)).filter((r) => r.priority === 5000),
      await node.run("nft", ["list", "table", "ip", "labnat"]),
    ];
    const before = await theirs();
    await applySite(target(), labInput(lab, "home"), "test");
    expect(await theirs()).toEqual(before);
    await applySite(target(), emptyInput(lab, "home"), "test");
    expect(await theirs()).toEqual(before);
    const after = await ownedSnapshot(node);
    expect(after.routes).toEqual([]);
    expect(after.rules.filter((r) => r.protocol === "77")).toEqual([]);
    expect(after.nft).not.toContain("table inet netpol");
    expect(after.links).not.toContain(lab.names.wgHome);
    expect(after.addresses).not.toContain("192.168.6.1/24 dev vl6");
  });

  it("takes down what carries its marks when the record is lost, and nothing else", async () => {
    const foreign = [
      ["link", "add", "fbr0", "type", "bridge"],
      ["route", "add", "10.126.0.0/24", "via", "198.51.100.1", "proto", "static"],
      ["route", "add", "table", "43", "10.127.0.0/24", "via", "198.51.100.1"],
      ["rule", "add", "priority", "5001", "from", "10.200.0.0/16", "lookup", "43"],
    ];
    for (const args of foreign) await node.run("ip", args);
    try {
      const theirs = async () => [
        (await routes(node)).filter((r) => r.dst === "10.126.0.0/24" || r.table === "43"),
        (await rules(node)).filter((r) => r.priority === 5001),
        await node.run("nft", ["list", "table", "ip", "labnat"]),
        (await ipJson(node, ["link", "show"]))
          .map((l) => l.ifname)
          .filter((n) => n !== lab.names.wgHome),
      ];
      const before = await theirs();
      await applySite(target(), labInput(lab, "home"), "test");
      await rm(target().files.stateDir, { recursive: true, force: true });
      const result = await takeDown(target(), "test");
      expect(result?.notes.join("\n")).toContain("recognised by its marks");
      const after = await ownedSnapshot(node);
      expect(after.routes).toEqual([]);
      expect(after.rules.filter((r) => r.protocol === "77")).toEqual([]);
      expect(after.nft).not.toContain("table inet netpol");
      expect(after.links).not.toContain(lab.names.wgHome);
      expect(await theirs()).toEqual(before);
      expect(await takeDown(target(), "test")).toBeUndefined();
    } finally {
      await node.run("ip", ["rule", "del", "priority", "5001"]);
      await node.run("ip", ["route", "del", "10.126.0.0/24"]);
      await node.run("ip", ["route", "del", "table", "43", "10.127.0.0/24"]);
      await node.run("ip", ["link", "del", "fbr0"]);
    }
  });

  it("refuses a table id that holds someone else's routes, and applies nothing", async () => {
    await node.run("ip", ["route", "add", "table", "3", "10.125.0.0/24", "via", "198.51.100.1"]);
    try {
      const before = await ownedSnapshot(node);
      await expect(applySite(target(), labInput(lab, "home"), "test")).rejects.toMatchObject({
        code: "NETPOL_E_FOREIGN_STATE",
      });
      expect(await ownedSnapshot(node)).toEqual(before);
    } finally {
      await node.run("ip", ["route", "del", "table", "3", "10.125.0.0/24"]);
    }
  });

  it("refuses a same-named WireGuard interface it did not create, and leaves its key, port and peers", async () => {
    const name = lab.names.wgHome;
    // A tunnel of the operator's own (wireguard-go, as wg-quick starts it without the module).
    await node.run("wireguard-go", [name]);
    try {
      const conf = `[Interface]\nPrivateKey = ${generateKeyPair().privateKey}\nListenPort = 51999\n[Peer]\nPublicKey = ${generateKeyPair().publicKey}\nAllowedIPs = 10.77.0.0/24\n`;
      await withSecretFile(path.join(lab.dir, "secrets"), conf, (file) =>
        node.run("wg", ["setconf", name, file]),
      );
      const dump = () => node.run("wg", ["show", name, "dump"]);
      const theirs = await dump();
      const planned = await planSite(target(), labInput(lab, "home"));
      expect(planned.plan.conflicts).toContainEqual(
        expect.stringContaining(`WireGuard interface ${name} exists but netpol did not create it`),
      );
      expect(planned.plan.changes.filter((c) => c.kind === "wireguard")).toEqual([]);
      const err = await applySite(target(), labInput(lab, "home"), "test").catch((e) => e);
      expect(err).toMatchObject({ code: "NETPOL_E_FOREIGN_STATE" });
      expect(String(err.message)).toContain(`ip link del ${name}`);
      expect(await dump()).toBe(theirs);
      const [link] = await ipJson(node, ["link", "show", "dev", name]);
      expect(link?.ifalias).toBeUndefined();
    } finally {
      await node.run("ip", ["link", "del", "dev", name]);
    }
  });

  // Creating state exercises every step but link removal; removing it exercises that one.
  // Home publishes nothing: the proxy step is tested on the VPS's Caddy (test/e2e/proxy.test.ts),
  // the relay step on the VPS's relay (test/e2e/proxy-protocol.test.ts).
  for (const step of STEPS.filter((s) => s !== "proxy" && s !== "relay")) {
    it(`restores the previous owned state when the ${step} step fails`, async () => {
      const fromFull = step === "link removal";
      if (fromFull) await applySite(target(), labInput(lab, "home"), "test");
      const next = fromFull ? emptyInput(lab, "home") : labInput(lab, "home");
      const before = await ownedSnapshot(node);
      const err = await applySite(target(failingAt(step, node.runner())), next, "test").catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(NetpolError);
      expect((err as NetpolError).code).toBe("NETPOL_E_APPLY_FAILED");
      expect((err as NetpolError).message).toContain(`injected failure in ${step}`);
      expect(await ownedSnapshot(node)).toEqual(before);
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
      await applySite(target(), emptyInput(lab, "home"), "test");
      const runner = node.runner();
      await applySite(target(runner), many(n), "test");
      return runner.spawned;
    };
    const small = await count(2);
    const large = await count(40);
    expect(large).toBe(small);
    // Per egress table (each `except` list differs, so none share): the marked `except` rule
    // and the table's rule, however many prefixes; plus the reply mark.
    const owned = (await ownedSnapshot(node)).rules.filter((r) => r.protocol === "77");
    expect(owned).toHaveLength(1 + 2 * 41);
  });

  it("lets one of two simultaneous applies run and refuses the other with a clear message", async () => {
    const results = await Promise.allSettled([
      applySite(target(), labInput(lab, "home"), "a"),
      applySite(target(), labInput(lab, "home"), "b"),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refused = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: "NETPOL_E_LOCKED" });
    expect(String(refused.reason.message)).toMatch(/another apply \(pid \d+\) is running/);
    expect((await planSite(target(), labInput(lab, "home"))).plan.changes).toEqual([]);
  });

  it("plans only what is in the policy for a site it is asked about", async () => {
    const input = labInput(lab, "home");
    const { plan, desired } = await planSite(target(), input);
    if (!("intent" in input)) throw new Error("labInput gives an intent");
    expect(plan.site).toBe("home");
    expect(plan.conflicts).toEqual([]);
    expect(desired).toEqual(compileSite(input.intent, "home"));
    // From nothing, it adds home's links and none of the VPS's, and no Caddy route (the VPS's).
    const added = plan.changes.flatMap((c) =>
      c.kind === "link" && c.op === "add" ? [c.link.name] : [],
    );
    expect(added.sort()).toEqual(desired.links.map((l) => l.name).sort());
    const vps = compileSite(input.intent, "vps");
    for (const link of vps.links) expect(added).not.toContain(link.name);
    expect(plan.proxy).toBeUndefined();
  });

  return () => home;
}
