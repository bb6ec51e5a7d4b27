import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../../src/lab/probe.js";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import {
  type Cluster,
  makeSegment,
  SEGMENT,
  type Segment,
  startCluster,
} from "../support/etcd-cluster.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";

/**
 * A fleet on a real 3-member etcd cluster (TLS, authentication, RBAC) and ten sites running
 * real wireguard-go: a hub and nine spokes, s1 the canary. Each site's agent runs in its own
 * namespace, as it would on its own machine. One revision after another: a publish converges
 * every site; the etcd leader is killed mid-rollout; a site cut off from etcd keeps its state,
 * goes stale and catches up after a compaction; a canary that breaks its tunnel reverts and
 * stops the rollout; a rollback publishes the last good revision again.
 */

const SPOKES = 9;
const SITES = ["hub", ...Array.from({ length: SPOKES }, (_, i) => `s${i + 1}`)];
const siteAddress = (i: number) => `${SEGMENT}.${100 + i}`;
const HUB_TUNNEL = "10.99.0.1";

interface AgentEvent {
  readonly event: string;
  readonly serial?: number;
}

describeLive("a fleet in etcd: publish, rollouts, partitions, a failing canary", () => {
  const sfx = uniqueSuffix();
  const prefix = `f${sfx}`;
  let dir = "";
  let segment: Segment | undefined;
  let cluster: Cluster | undefined;
  let ctl: Netns | undefined;
  const sites = new Map<string, Netns>();
  const agents = new Map<string, { child: ResultPromise; events: AgentEvent[] }>();
  const keys = new Map<string, string>();
  const ifname = (site: string) => `wf${site === "hub" ? "h" : site.slice(1)}${sfx}`;
  let keepalive = 5;
  /** s1's key file and public key (changed by the failing canary). */
  let canaryKey = "s1.key";

  const ns = (site: string) => {
    const n = sites.get(site);
    if (!n) throw new Error(`no namespace for ${site}`);
    return n;
  };
  const control = () => {
    if (!ctl) throw new Error("no control namespace");
    return ctl;
  };
  const etcd = () => {
    if (!cluster) throw new Error("no cluster");
    return cluster;
  };

  const policy = () => {
    const member = (site: string) =>
      site === "hub"
        ? `      - { site: hub, interface: ${ifname(site)}, address: ${HUB_TUNNEL}/24, endpoint: "${siteAddress(0)}:51820", publicKey: ${keys.get("hub")}, privateKeyFile: hub.key }`
        : `      - { site: ${site}, interface: ${ifname(site)}, address: 10.99.0.${Number(site.slice(1)) + 1}/24, publicKey: ${keys.get(site)}, privateKeyFile: ${site === "s1" ? canaryKey : `${site}.key`} }`;
    return [
      "version: 1",
      "sites:",
      "  hub: {}",
      ...SITES.slice(1).map(
        (s) =>
          `  ${s}: { interfaces: [{ name: lan0, kind: physical }], networks: [{ name: lan, cidr: 192.168.${s.slice(1)}.0/24, interface: lan0, address: 192.168.${s.slice(1)}.1 }] }`,
      ),
      "tunnels:",
      "  - name: wf",
      "    topology: hub",
      "    hub: hub",
      `    keepalive: ${keepalive}`,
      "    members:",
      ...SITES.map(member),
      "rollout:",
      "  waves: [[s1], [hub]]",
      "  healthSeconds: 4",
      "",
    ].join("\n");
  };

  const etcdFlags = (user: string) => [
    ...["--etcd", etcd().endpoints.join(","), "--cacert", etcd().certs.ca],
    ...[
      "--cert",
      path.join(etcd().certs.dir, `${user}.crt`),
      "--key",
      path.join(etcd().certs.dir, `${user}.key`),
    ],
    ...["--user", user, "--password-file", path.join(dir, "passwords", `${user}.password`)],
  ];

  /** netpol in the control namespace (the operator's machine) as `user`. */
  const netpol = (args: readonly string[], user = "netpol-publisher") =>
    execa(
      "ip",
      [
        "netns",
        "exec",
        control().name,
        process.execPath,
        "bin/netpol.js",
        ...args,
        ...etcdFlags(user),
      ],
      {
        reject: false,
      },
    );

  const publish = async (args: readonly string[] = []) => {
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, policy());
    const r = await netpol(["publish", file, "--json", ...args]);
    if (r.exitCode !== 0) throw new Error(`publish: ${r.stderr}${r.stdout}`);
    return JSON.parse(String(r.stdout)) as { serial: number };
  };

  const rollout = async () => {
    const r = await netpol(["rollout", "status", "--json"]);
    return JSON.parse(String(r.stdout)) as {
      progress: { kind: string; failed?: string[] };
      sites: { site: string; state: string; ledger?: { serial: number; result: string } }[];
    };
  };
  const fleet = async () => {
    const r = await netpol(["status", "--fleet", "--json"]);
    return JSON.parse(String(r.stdout)) as {
      sites: { site: string; serial: number | null; stale: boolean; state: string }[];
    };
  };
  /** Waits until every site reports `serial`; the rows as read last. */
  const converged = async (serial: number, except: readonly string[] = []) =>
    eventually(
      fleet,
      (f) =>
        f.sites
          .filter((s) => !except.includes(s.site))
          .every((s) => s.serial === serial && s.state === "in force"),
      40_000,
    );

  const startAgent = (site: string) => {
    const events: AgentEvent[] = [];
    const user = `netpol-site-${site}`;
    const child = execa(
      "ip",
      [
        ...[
          "netns",
          "exec",
          ns(site).name,
          process.execPath,
          "bin/netpol.js",
          "agent",
          "--site",
          site,
        ],
        ...[
          "--state-dir",
          path.join(dir, "state", site),
          "--key-dir",
          path.join(dir, "keys", site),
        ],
        ...["--report-ttl", "3", "--interval", "0", "--json", ...etcdFlags(user)],
      ],
      { reject: false, stdin: "ignore", buffer: false, cleanup: true },
    );
    let pending = "";
    child.stdout?.on("data", (d: Buffer) => {
      pending += d.toString();
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith("{")) events.push(JSON.parse(line) as AgentEvent);
      }
    });
    child.stderr?.on("data", (d: Buffer) => {
      for (const line of d
        .toString()
        .split("\n")
        .filter((l) => l.startsWith("{")))
        events.push(JSON.parse(line) as AgentEvent);
    });
    agents.set(site, { child, events });
  };
  /** How often each site took up `serial` (applied it, or found it in force), by site. */
  const takenUp = (serial: number) =>
    new Map(
      SITES.map((s) => [
        s,
        (agents.get(s)?.events ?? []).filter(
          (e) => e.serial === serial && ["applied", "unchanged", "failed"].includes(e.event),
        ).length,
      ]),
    );
  /** The persistent keepalive a site's WireGuard peers have in its kernel. */
  const kernelKeepalive = async (site: string) => {
    const { stdout } = await ns(site).exec(["wg", "show", ifname(site), "persistent-keepalive"]);
    return stdout
      .trim()
      .split("\n")
      .map((l) => l.split("\t")[1]);
  };
  const reachHub = (site: string) =>
    eventually(
      async () => (await ns(site).run(["ping", "-c", "1", "-W", "1", HUB_TUNNEL])).exitCode === 0,
      (ok) => ok,
      15_000,
    );

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-fleet-"));
    segment = await makeSegment(prefix);
    cluster = await startCluster(dir, segment, prefix);
    ctl = await createNetns(`${prefix}c`);
    await segment.join(ctl, "eth0", `${SEGMENT}.2`);
    for (const [i, site] of SITES.entries()) {
      const n = await createNetns(`${prefix}${i}`);
      sites.set(site, n);
      await segment.join(n, "wan", siteAddress(i));
      if (site !== "hub") {
        await n.exec(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
        await n.exec(["ip", "link", "set", "lan0", "up"]);
      }
      // Each site holds its own private key only, in a directory of its own.
      const pair = generateKeyPair();
      await mkdir(path.join(dir, "keys", site), { recursive: true, mode: 0o700 });
      await writePrivateKey(path.join(dir, "keys", site, `${site}.key`), pair.privateKey);
      keys.set(site, pair.publicKey);
    }
    for (const user of ["admin", "netpol-publisher", ...SITES.map((s) => `netpol-site-${s}`)])
      await etcd().certs.client(user);
    // RBAC from the policy, authentication on (the root user is made then), as the docs say.
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, policy());
    const root = etcd().certs;
    const grant = await execa(
      "ip",
      [
        ...[
          "netns",
          "exec",
          control().name,
          process.execPath,
          "bin/netpol.js",
          "fleet",
          "grant",
          file,
        ],
        ...[
          "--out",
          path.join(dir, "passwords"),
          "--enable-auth",
          "--etcd",
          etcd().endpoints.join(","),
        ],
        ...[
          "--cacert",
          root.ca,
          "--cert",
          path.join(root.dir, "admin.crt"),
          "--key",
          path.join(root.dir, "admin.key"),
        ],
      ],
      { reject: false },
    );
    expect(grant.exitCode, `${grant.stderr}${grant.stdout}`).toBe(0);
    for (const site of SITES) startAgent(site);
  }, 120_000);

  afterAll(async () => {
    const signal = (pid: number | undefined, sig: NodeJS.Signals) => {
      try {
        if (pid !== undefined) process.kill(pid, sig);
      } catch {
        // gone already
      }
    };
    for (const { child } of agents.values()) {
      signal(child.pid, "SIGTERM");
      await Promise.race([child, new Promise((r) => setTimeout(r, 3_000))]);
      signal(child.pid, "SIGKILL");
    }
    await stopWireguardGoByName(SITES.map(ifname));
    await cluster?.stop();
    for (const n of [ctl, ...sites.values()]) await n?.destroy();
    await segment?.sw.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("converges every site on a publish, wave by wave: the spokes reach the hub through the tunnel", async () => {
    const { serial } = await publish();
    expect(serial).toBe(1);
    const rows = await converged(1);
    expect(rows.sites.map((s) => [s.site, s.serial])).toEqual(SITES.map((s) => [s, 1]));
    for (const s of SITES.slice(1)) expect(await reachHub(s), `${s} reaches the hub`).toBe(true);
    expect((await rollout()).progress.kind).toBe("complete");
    // The canary went first: the hub's agent waited for it.
    expect(agents.get("hub")?.events.some((e) => e.event === "waiting" && e.serial === 1)).toBe(
      true,
    );
  }, 90_000);

  it("lets a site's credentials write only its own report, and never the policy", async () => {
    // The site's user and password (by the environment, not argv) over the root's certificate:
    // what is checked is the role, which the user carries.
    const password = await readFile(path.join(dir, "passwords", "netpol-site-s3.password"), "utf8");
    const env = { ETCDCTL_USER: `netpol-site-s3:${password.trim()}` };
    const put = (key: string) => etcd().etcdctl(control(), ["put", key, "x"], env);
    expect((await put("/netpol/reports/s4/live")).stderr).toMatch(/permission denied/);
    expect((await put("/netpol/head")).stderr).toMatch(/permission denied/);
    expect((await put("/netpol/sites/s4/desired")).stderr).toMatch(/permission denied/);
    expect((await put("/netpol/reports/s3/probe")).exitCode).toBe(0);
    // Through netpol itself: a site's credentials cannot publish.
    const file = path.join(dir, "policy.yaml");
    const r = await netpol(["publish", file, "--json"], "netpol-site-s3");
    expect(r.exitCode).toBe(1);
    expect(String(r.stdout)).toMatch(/NETPOL_E_ETCD_DENIED/);
  }, 30_000);

  it("goes on after the etcd leader is killed mid-rollout: no site applied twice or skipped", async () => {
    keepalive = 6;
    const { serial } = await publish();
    // The canary applied: the rollout is under way. Kill the leader now.
    await eventually(
      async () =>
        (
          await etcd().etcdctl(control(), [
            "get",
            "/netpol/reports/s1/ledger",
            "--print-value-only",
          ])
        ).stdout,
      (v) => v.includes(`"serial":${serial}`),
      20_000,
    );
    const leader = await etcd().leader(control());
    await etcd().kill(leader);
    await converged(serial);
    expect([...takenUp(serial).values()]).toEqual(SITES.map(() => 1));
    for (const s of SITES.slice(1)) expect(await kernelKeepalive(s), s).toEqual(["6"]);
    await etcd().start(leader);
  }, 90_000);

  it("leaves a site cut off from etcd as it is, shows it stale, and catches it up after a compaction", async () => {
    const cut = "s9";
    const block = (op: "add" | "delete") =>
      ns(cut).exec(
        op === "add"
          ? [
              "nft",
              `add table inet cut; add chain inet cut out { type filter hook output priority 0; }; add rule inet cut out tcp dport 2379 drop`,
            ]
          : ["nft", "delete table inet cut"],
      );
    await block("add");
    const stale = await eventually(
      fleet,
      (f) => f.sites.find((s) => s.site === cut)?.stale === true,
      20_000,
    );
    expect(stale.sites.find((s) => s.site === cut)).toMatchObject({ stale: true, serial: 2 });
    keepalive = 7;
    const { serial } = await publish();
    await converged(serial, [cut]);
    // Cut off, it keeps what it had: the tunnel still works, with the old settings.
    expect(await kernelKeepalive(cut)).toEqual(["6"]);
    expect(await reachHub(cut)).toBe(true);
    const revision = (await etcd().etcdctl(control(), ["get", "/netpol/head", "-w", "json"]))
      .stdout;
    const compactTo = (JSON.parse(revision) as { header: { revision: number } }).header.revision;
    expect((await etcd().etcdctl(control(), ["compact", String(compactTo)])).exitCode).toBe(0);
    await block("delete");
    await converged(serial);
    expect(await kernelKeepalive(cut)).toEqual(["7"]);
    expect(takenUp(serial).get(cut)).toBe(1);
  }, 120_000);

  it("stops the rollout when the canary's apply breaks its tunnel: the canary reverts, the rest is untouched", async () => {
    // The canary gets a new key the hub, a later wave, does not know yet: its tunnel breaks.
    const pair = generateKeyPair();
    const oldKey = keys.get("s1") ?? "";
    await writePrivateKey(path.join(dir, "keys", "s1", "s1-new.key"), pair.privateKey);
    keys.set("s1", pair.publicKey);
    canaryKey = "s1-new.key";
    keepalive = 8;
    const { serial } = await publish();
    const view = await eventually(rollout, (r) => r.progress.kind === "halted", 40_000);
    expect(view.progress.failed).toEqual(["s1"]);
    expect(
      view.sites
        .filter((s) => s.state === "held")
        .map((s) => s.site)
        .sort(),
    ).toEqual(
      SITES.slice(1)
        .filter((s) => s !== "s1")
        .concat("hub")
        .sort(),
    );
    // Untouched: the hub still has the canary's old key, the spokes revision 3's keepalive; the
    // canary is back on revision 3.
    const hubPeers = (await ns("hub").exec(["wg", "show", ifname("hub"), "peers"])).stdout;
    expect(hubPeers).toContain(oldKey);
    expect(hubPeers).not.toContain(pair.publicKey);
    for (const s of SITES.slice(2)) expect(await kernelKeepalive(s), s).toEqual(["7"]);
    expect(await kernelKeepalive("s1")).toEqual(["7"]);
    expect(await reachHub("s1")).toBe(true);
    expect(takenUp(serial).get("hub")).toBe(0);
    // Rolling back publishes revision 3's policy again: nothing anywhere needs applying.
    const back = await netpol(["rollback", "--to", String(serial - 1), "--json"]);
    expect(back.exitCode, String(back.stderr)).toBe(0);
    const next = (JSON.parse(String(back.stdout)) as { serial: number }).serial;
    await converged(next);
    const results = (await rollout()).sites.map((s) => s.ledger?.result);
    expect(results).toEqual(SITES.map(() => "unchanged"));
  }, 120_000);
});
