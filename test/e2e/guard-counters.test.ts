import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

/**
 * A fail-closed guard that has dropped packets is doing its job, not drift: its counter in the
 * listing the last apply recorded moves on its own. A router namespace runs VLAN_EGRESS_POLICY
 * (network `files` on lan0 leaves by ext0, fail-closed); a host namespace on lan0 is a VLAN
 * host. A foreign rule ahead of netpol's sends the host's traffic for the WAN's subnet out by
 * wan0 instead, so the guard drops it and counts it.
 */

const HOST = "192.168.6.10";
const WAN_PEER = "198.51.100.1";
/** Another tool's rule, ahead of netpol's (priority 200): the stray path the guard catches. */
const STRAY_RULE = ["priority", "100", "from", "192.168.6.0/24", "to", "198.51.100.0/24"];
const GUARD = /counter packets (\d+) bytes \d+ drop comment "fail-closed out"/;

const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

describeLive("a fail-closed guard that has dropped packets", () => {
  let dir: string;
  let router: Netns | undefined;
  let host: Netns | undefined;
  /** Where netpol works: the router namespace and a state directory of the test's own. */
  let where: string[];
  let policy: string[];

  const guardPackets = async () => {
    const chain = await router?.exec(["nft", "list", "chain", "inet", "netpol", "filter_forward"]);
    const packets = GUARD.exec(chain?.stdout ?? "")?.[1];
    if (packets === undefined) throw new Error(`no guard rule in\n${chain?.stdout}`);
    return Number(packets);
  };
  const json = async (args: string[]) => {
    const r = await netpol([...args, "--json"]);
    if (!r.stdout.startsWith("{")) throw new Error(`netpol ${args[0]}: ${r.stderr}`);
    return { exitCode: r.exitCode, out: JSON.parse(r.stdout) };
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-guard-"));
    router = await createNetns("gc");
    host = await createNetns("gch");
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, VLAN_EGRESS_POLICY);
    where = ["--netns", router.name, "--state-dir", path.join(dir, "state")];
    policy = [file, "--site", "home", ...where];
    await router.exec(
      ["ip", "-batch", "-"],
      [
        `link add lan0 type veth peer name eth0 netns ${host.name}`,
        "link add ext0 type veth peer name ext0p",
        "link add wan0 type veth peer name wan0p",
        ...["lan0", "ext0", "ext0p", "wan0", "wan0p"].map((d) => `link set ${d} up`),
        "address add 198.51.100.2/24 dev wan0",
        `rule add ${STRAY_RULE.join(" ")} lookup main`,
        "",
      ].join("\n"),
    );
    await host.exec(
      ["ip", "-batch", "-"],
      `address add ${HOST}/24 dev eth0\nlink set eth0 up\nroute add default via 192.168.6.1\n`,
    );
    const applied = await netpol(["apply", ...policy]);
    if (applied.exitCode !== 0) throw new Error(`netpol apply: ${applied.stderr}`);
  });
  afterAll(async () => {
    await host?.destroy();
    await router?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is in sync after the apply, before any packet (the stray rule is not netpol's)", async () => {
    const { exitCode, out } = await json(["plan", ...policy]);
    expect(out.changes).toEqual([]);
    expect(exitCode).toBe(0);
    expect(await guardPackets()).toBe(0);
  });

  it("drops and counts the host's packets that the stray rule sends out by the WAN", async () => {
    // Dropped packets get no answer: ping fails, within a second.
    const ping = await host?.run(["ping", "-c", "3", "-i", "0.1", "-w", "1", WAN_PEER]);
    expect(ping?.exitCode).not.toBe(0);
    expect(await guardPackets()).toBeGreaterThan(0);
  });

  it("plans nothing: the table is in sync", async () => {
    const { exitCode, out } = await json(["plan", ...policy]);
    expect(out.changes).toEqual([]);
    expect(exitCode).toBe(0);
  });

  it("applies nothing again, and the counter is still there (the table was not replaced)", async () => {
    const before = await guardPackets();
    const { exitCode, out } = await json(["apply", ...policy]);
    expect(exitCode).toBe(0);
    expect(out.plan.changes).toEqual([]);
    expect(out.changed).toBe(false);
    expect(await guardPackets()).toBe(before);
  });

  it("reports the dropped packets for the egress, and no drift", async () => {
    const { out } = await json(["status", ...where]);
    expect(out.drift.changes).toEqual([]);
    expect(out.drift.inSync).toBe(true);
    const egress = out.egress.find((e: { name: string }) => e.name === "out");
    expect(egress?.droppedPackets).toBeGreaterThan(0);
    expect(egress?.droppedPackets).toBe(await guardPackets());
  });

  it("still finds a rule added by hand, and plans to replace the table", async () => {
    await router?.exec([
      ...["nft", "add", "rule", "inet", "netpol", "filter_forward"],
      ...["ip", "daddr", "203.0.113.9", "counter", "accept", "comment", '"by hand"'],
    ]);
    const { exitCode, out } = await json(["plan", ...policy]);
    expect(out.changes).toEqual([
      {
        op: "replace",
        kind: "nft",
        what: "nftables table inet netpol (edited by hand since the last apply)",
      },
    ]);
    expect(exitCode).toBe(2);
  });
});
