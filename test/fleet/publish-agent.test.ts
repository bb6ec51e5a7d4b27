import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../../src/lab/probe.js";
import { ENDPOINT, kill, startEtcd } from "../support/etcd-member.js";
import { networksPolicy } from "../support/large-policy.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

/**
 * `publish` and one site's agent against one real etcd member, all in one namespace (the site's
 * kernel is that namespace's): a publish refused when another landed since the revision the user
 * saw; `--dry-run` planning from the agent's report; an agent restarted, which takes up what was
 * published while it was down and never applies a revision it has applied already; the agent
 * as the site's resident process, answering a device that comes back as `netpol watch` does.
 */

interface AgentEvent {
  readonly event: string;
  readonly serial?: number;
  readonly changes?: number;
}

const policy = (networks: readonly string[]) => `version: 1
sites:
  home:
    interfaces: [{ name: eth0, kind: physical }]
    networks:
${networks.map((n, i) => `      - { name: ${n}, cidr: 10.${60 + i}.0.0/24, interface: eth0, address: 10.${60 + i}.0.1 }`).join("\n")}
`;

describeLive("publish and an agent against one etcd member", () => {
  let ns: Netns | undefined;
  let dir = "";
  let etcd: { stop(): Promise<void> } | undefined;
  let agent: { child: ResultPromise; events: AgentEvent[] } | undefined;

  const name = () => {
    if (!ns) throw new Error("no namespace");
    return ns.name;
  };
  const netpol = (args: readonly string[]) =>
    execa("ip", ["netns", "exec", name(), process.execPath, "bin/netpol.js", ...args], {
      reject: false,
    });
  const publish = async (networks: readonly string[] | string, args: readonly string[] = []) => {
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, typeof networks === "string" ? networks : policy(networks));
    return netpol(["publish", file, "--etcd", ENDPOINT, "--json", ...args]);
  };
  const get = async (key: string) =>
    (
      await execa("ip", [
        ...["netns", "exec", name(), "etcdctl", "--endpoints", ENDPOINT],
        ...["get", key, "--print-value-only"],
      ])
    ).stdout;
  const ledger = async () => {
    const text = await get("/netpol/reports/home/ledger");
    return text ? (JSON.parse(text) as { serial: number; result: string; at: string }) : undefined;
  };

  const startAgent = () => {
    const child = execa(
      "ip",
      [
        ...["netns", "exec", name(), process.execPath, "bin/netpol.js", "agent", "--site", "home"],
        ...["--etcd", ENDPOINT, "--key-dir", path.join(dir, "keys")],
        ...["--state-dir", path.join(dir, "state"), "--netns", name(), "--json"],
        ...["--report-ttl", "5", "--interval", "0"],
      ],
      { stdout: "pipe", stderr: "inherit", buffer: false, reject: false },
    );
    const events: AgentEvent[] = [];
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      events.push(JSON.parse(line) as AgentEvent);
    });
    agent = { child, events };
    return agent;
  };
  const stopAgent = async () => {
    agent?.child.kill("SIGTERM");
    await agent?.child;
    agent = undefined;
  };
  const reached = (serial: number) =>
    eventually(ledger, (l) => l?.serial === serial, 20_000).then((l) => {
      expect(l?.serial, `the agent reported revision ${serial}`).toBe(serial);
      return l;
    });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-test-fleet-"));
    await mkdir(path.join(dir, "keys"), { mode: 0o700 });
    ns = await createNetns("npfl");
    await ns.exec(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"]);
    await ns.exec(["ip", "link", "set", "eth0", "up"]);
    etcd = await startEtcd(ns.name, dir);
  }, 90_000);

  afterAll(async () => {
    if (agent) kill(agent.child.pid);
    await agent?.child;
    await etcd?.stop();
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("refuses a publish when another landed since the revision the user saw, and changes nothing", async () => {
    const first = await publish(["lan"]);
    expect(first.exitCode, String(first.stderr)).toBe(0);
    expect(JSON.parse(String(first.stdout))).toMatchObject({ serial: 1 });
    // Someone else publishes revision 2 meanwhile; this user reviewed revision 1.
    expect((await publish(["lan", "guests"])).exitCode).toBe(0);
    const late = await publish(["lan", "iot"], ["--expect", "1"]);
    expect(late.exitCode).toBe(1);
    expect(String(late.stdout)).toMatch(/NETPOL_E_PUBLISH_CONFLICT/);
    expect(String(late.stdout)).not.toMatch(/\n\s+at /);
    const head = JSON.parse(await get("/netpol/head")) as { serial: number };
    expect(head.serial).toBe(2);
    const desired = JSON.parse(await get("/netpol/sites/home/desired")) as { text: string };
    expect(desired.text).toContain("guests");
    expect(desired.text).not.toContain("iot");
  }, 60_000);

  it("plans each site from its agent's latest report with --dry-run, publishing nothing", async () => {
    startAgent();
    await reached(2);
    const r = await publish(["lan", "guests", "iot"], ["--dry-run"]);
    // 2: a site would change.
    expect(r.exitCode, String(r.stderr)).toBe(2);
    const plan = JSON.parse(String(r.stdout)) as {
      basedOn: number;
      plans: { site: string; from: number | null; changes: string[] }[];
    };
    expect(plan.basedOn).toBe(2);
    const home = plan.plans.find((p) => p.site === "home");
    expect(home?.from).toBe(2);
    // Only what the new network adds: the rest is in force already, as the report says.
    expect(home?.changes.some((c) => c.includes("10.62.0.1"))).toBe(true);
    expect(home?.changes.some((c) => c.includes("10.60.0.1"))).toBe(false);
    expect((JSON.parse(await get("/netpol/head")) as { serial: number }).serial).toBe(2);
    // The same policy as in force: nothing to do.
    const same = await publish(["lan", "guests"], ["--dry-run"]);
    expect(same.exitCode).toBe(0);
    const samePlan = JSON.parse(String(same.stdout)) as { plans: { changes: string[] }[] };
    expect(samePlan.plans[0]?.changes).toEqual([]);
  }, 60_000);

  it("resumes after a restart from the latest revision, never applying one it applied before", async () => {
    if (!agent) startAgent();
    const before = await reached(2);
    await stopAgent();
    // Restarted with nothing new: revision 2 is reported as it was, not taken up again.
    const again = startAgent();
    await eventually(
      async () => again.events,
      (e) => e.some((x) => x.event === "connected"),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    expect(again.events.filter((e) => e.serial === 2)).toEqual([]);
    expect(await ledger()).toEqual(before);
    await stopAgent();
    // Published while the agent was down: taken up once it is back, once.
    expect((await publish(["lan", "guests", "iot"])).exitCode).toBe(0);
    const back = startAgent();
    const after = await reached(3);
    expect(after?.result).toBe("applied");
    expect(back.events.filter((e) => e.event === "applied").map((e) => e.serial)).toEqual([3]);
    const addresses = await ns?.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    expect(addresses?.stdout).toContain("10.62.0.1/24");
  }, 90_000);

  it("is the site's resident process: a device coming back gets its routes from a reaction, no apply", async () => {
    await ns?.exec(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await ns?.exec(["ip", "tuntap", "add", "ext0", "mode", "tun"]);
    for (const d of ["lan0", "lan1", "ext0"]) await ns?.exec(["ip", "link", "set", d, "up"]);
    const running = agent ?? startAgent();
    expect((await publish(VLAN_EGRESS_POLICY)).exitCode).toBe(0);
    await reached(4);
    const egressRoute = async () =>
      (await ns?.exec(["ip", "route", "show", "table", "3"]))?.stdout.includes("default dev ext0");
    expect(await egressRoute()).toBe(true);
    for (let round = 0; round < 2; round++) {
      // Settled: the rounds the revision's own events caused are over.
      await new Promise((r) => setTimeout(r, 500));
      const from = running.events.length;
      await ns?.exec(["ip", "link", "set", "ext0", "down"]);
      expect(await egressRoute()).toBe(false);
      await ns?.exec(["ip", "link", "set", "ext0", "up"]);
      const reaction = await eventually(
        async () => running.events.slice(from).find((e) => e.event === "reaction"),
        (e) => e !== undefined,
        10_000,
      );
      expect(reaction, `round ${round}`).toMatchObject({ trigger: "device ext0 up", changes: 1 });
      expect(await egressRoute(), `round ${round}`).toBe(true);
      expect(running.events.slice(from).filter((e) => e.event === "error")).toEqual([]);
    }
    // Revision 4 was applied once, through the resident; the reactions are no revision.
    expect(running.events.filter((e) => e.event === "applied" && e.serial === 4)).toHaveLength(1);
  }, 90_000);

  it("runs the health probes of the policy in force, as watch does: a chain's silent path goes down", async () => {
    await ns?.exec(["ip", "tuntap", "add", "ext1", "mode", "tun"]);
    await ns?.exec(["ip", "link", "set", "ext1", "up"]);
    const running = agent ?? startAgent();
    const from = running.events.length;
    const chain = VLAN_EGRESS_POLICY.replace(
      "external: [{ name: ext0 }]",
      "external: [{ name: ext0 }, { name: ext1 }]",
    ).replace(
      "via: ext0, except: [192.168.0.0/16],",
      "via: [ext0, ext1], health: { targets: [192.0.2.80], interval: 1, downAfter: 2 },",
    );
    expect(chain).toContain("via: [ext0, ext1]");
    expect((await publish(chain)).exitCode).toBe(0);
    await reached(5);
    // Nothing answers 192.0.2.80 through either tun: the monitor says so, through the agent.
    const down = await eventually(
      async () =>
        running.events
          .slice(from)
          .find(
            (e) =>
              e.event === "health" &&
              (e as { health?: { event: string; state?: string } }).health?.state === "down",
          ),
      (e) => e !== undefined,
      20_000,
    );
    expect(down, JSON.stringify(running.events.slice(from))).toBeDefined();
  }, 60_000);

  it("applies the state its publisher compiled, never parsing the text; a forged part fails, nothing applied", async () => {
    const running = agent ?? startAgent();
    const key = "/netpol/sites/home/desired";
    const current = JSON.parse(await get(key)) as {
      serial: number;
      text: string;
      state: { addresses: object[] };
    };
    const put = async (value: object) =>
      execa("ip", [
        ...["netns", "exec", name(), "etcdctl", "--endpoints", ENDPOINT],
        ...["put", key, JSON.stringify(value)],
      ]);
    const addresses = async () =>
      (await ns?.exec(["ip", "-4", "-o", "addr", "show", "dev", "eth0"]))?.stdout ?? "";
    // The state says one more address than the text (a new text: a space more, its hash with
    // it): the state is what the agent applies.
    const extra = { device: "eth0", cidr: `4:${(10 << 24) + (99 << 16) + 1}/24` };
    const serial = current.serial + 1;
    const text = `${current.text} `;
    await put({
      ...current,
      serial,
      text,
      hash: createHash("sha256").update(text).digest("hex"),
      state: { ...current.state, addresses: [...current.state.addresses, extra] },
    });
    expect((await reached(serial))?.result).toBe("applied");
    expect(await addresses()).toContain("10.99.0.1/24");
    // A part whose text is not the one its hash names: refused, the site left as it is.
    const before = await addresses();
    await put({ ...current, serial: serial + 1, text: current.text.replace("ext1", "ext2") });
    const failed = await reached(serial + 1);
    expect(failed).toMatchObject({ result: "failed" });
    expect((failed as { error?: string }).error).toMatch(
      new RegExp(`^revision ${serial + 1}: the part etcd holds for home does not match its hash`),
    );
    expect(await addresses()).toBe(before);
    expect(running.events.filter((e) => e.event === "applied" && e.serial === serial + 1)).toEqual(
      [],
    );
  }, 60_000);

  it("publishes a policy past the 2 MiB a site's own command reads, packed within etcd's 1.5 MiB, and rolls back to it", async () => {
    // One other site with 30,000 networks: 2.2 MB of text (the home agent has no part in it).
    const large = networksPolicy(30_000).replace("  home:", "  bulk:");
    expect(Buffer.byteLength(large)).toBeGreaterThan(2 * 1024 * 1024);
    const r = await publish(large);
    expect(r.exitCode, String(r.stdout)).toBe(0);
    const { serial, hash } = JSON.parse(String(r.stdout)) as { serial: number; hash: string };
    // The whole text, not the first 2 MiB of it.
    expect(hash).toBe(createHash("sha256").update(large).digest("hex"));
    const stored = await get(`/netpol/policies/${String(serial).padStart(10, "0")}`);
    expect(stored.length).toBeLessThan(1.5 * 1024 * 1024);
    expect((await get("/netpol/sites/bulk/desired")).length).toBeLessThan(1.5 * 1024 * 1024);
    // Another revision, then back to the large one: read from etcd, unpacked, published again.
    expect((await publish(["lan"])).exitCode).toBe(0);
    const back = await netpol(["rollback", "--to", String(serial), "--etcd", ENDPOINT, "--json"]);
    expect(back.exitCode, String(back.stdout)).toBe(0);
    const head = JSON.parse(await get("/netpol/head")) as { serial: number; rollbackOf?: number };
    expect(head).toMatchObject({ serial: serial + 2, rollbackOf: serial });
  }, 120_000);
});
