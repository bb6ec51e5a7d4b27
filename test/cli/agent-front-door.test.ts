import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../../src/lab/probe.js";
import { type Cluster, makeSegment, SEGMENT, startCluster } from "../support/etcd-cluster.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";

/**
 * One site of a fleet on its own: a real etcd member (TLS) in a namespace of its own, the
 * publisher in another, the site in a third, all on one bridge. The site runs one process,
 * `netpol agent --listen`: the resident that applies etcd's revisions also answers /status,
 * /metrics and POST /apply; a second resident (serve, watch) is refused with the agent named.
 * Cut off from etcd (its packets to the member dropped in its namespace), the site keeps its
 * state, its own status says STALE with the age, a revision published meanwhile waits; healed,
 * it catches up and the indicator clears.
 */

const TOKEN = "agent-front-door-token-0123456789";
const PORT = 9470;

const policy = (networks: number) => `version: 1
sites:
  s1:
    interfaces: [{ name: lan0, kind: physical }]
    networks:
${Array.from({ length: networks }, (_, i) => `      - { name: n${i}, cidr: 10.${60 + i}.0.0/24, interface: lan0, address: 10.${60 + i}.0.1 }`).join("\n")}
`;

interface Answer {
  readonly status: number;
  readonly body: string;
}

interface SiteStatusJson {
  readonly policy: { readonly hash: string } | null;
  readonly fleet: {
    readonly stale: boolean;
    readonly agentRunning: boolean;
    readonly lastContactAgeSeconds: number | null;
    readonly message: string;
  } | null;
}

describeLive("netpol agent --listen: one resident per fleet site, stale while cut off", () => {
  const prefix = `o${uniqueSuffix()}`;
  let dir = "";
  let segment: Awaited<ReturnType<typeof makeSegment>> | undefined;
  let cluster: Cluster | undefined;
  let ctl: Netns | undefined;
  let site: Netns | undefined;
  let agent: ResultPromise | undefined;
  let agentOutput = "";

  const must = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`no ${what}`);
    return x;
  };
  const etcd = () => must(cluster, "cluster");
  const siteNs = () => must(site, "site namespace");
  const tls = (user: string) => [
    ...["--etcd", etcd().endpoints.join(","), "--cacert", etcd().certs.ca],
    ...["--cert", path.join(etcd().certs.dir, `${user}.crt`)],
    ...["--key", path.join(etcd().certs.dir, `${user}.key`)],
  ];
  const netpolIn = (ns: Netns, args: readonly string[]) =>
    execa("ip", ["netns", "exec", ns.name, process.execPath, "bin/netpol.js", ...args], {
      reject: false,
    });
  const publish = async (networks: number) => {
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, policy(networks));
    const r = await netpolIn(must(ctl, "control namespace"), [
      ...["publish", file, "--json"],
      ...tls("publisher"),
    ]);
    expect(r.exitCode, `${r.stderr}${r.stdout}`).toBe(0);
    return JSON.parse(String(r.stdout)) as { serial: number };
  };
  const localArgs = () => ["--netns", siteNs().name, "--state-dir", path.join(dir, "state")];
  /** The agent's own HTTP front door, asked from inside the site's namespace. */
  const ask = async (route: string, method = "GET", body?: string): Promise<Answer> => {
    const script = `fetch(${JSON.stringify(`http://127.0.0.1:${PORT}${route}`)}, ${JSON.stringify({
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body ? { "content-type": "application/yaml" } : {}),
      },
      ...(body ? { body } : {}),
    })}).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), () => console.log(JSON.stringify({ status: 0, body: "" })))`;
    const r = await execa("ip", ["netns", "exec", siteNs().name, process.execPath, "-e", script]);
    return JSON.parse(String(r.stdout)) as Answer;
  };
  const status = async () => {
    const r = await ask("/status");
    return r.status === 200 ? (JSON.parse(r.body) as SiteStatusJson) : undefined;
  };
  const ledgerHash = async () => {
    const r = await etcd().etcdctl(must(ctl, "control namespace"), [
      ...["get", "/netpol/reports/s1/ledger", "--print-value-only"],
    ]);
    return r.stdout.trim() ? (JSON.parse(r.stdout) as { serial: number; hash: string }) : undefined;
  };
  const addresses = async () =>
    (await siteNs().exec(["ip", "-4", "-o", "addr", "show", "dev", "lan0"])).stdout;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-agent-door-"));
    segment = await makeSegment(prefix);
    cluster = await startCluster(dir, segment, prefix, 1);
    ctl = await createNetns(`${prefix}c`);
    await segment.join(ctl, "eth0", `${SEGMENT}.2`);
    site = await createNetns(`${prefix}s`);
    await segment.join(site, "wan", `${SEGMENT}.100`);
    await site.exec(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await site.exec(["ip", "link", "set", "lan0", "up"]);
    for (const user of ["publisher", "site"]) await cluster.certs.client(user);
    await mkdir(path.join(dir, "keys"), { mode: 0o700 });
    await writeFile(path.join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 });
    agent = execa(
      "ip",
      [
        ...["netns", "exec", site.name, process.execPath, "bin/netpol.js", "agent"],
        ...["--site", "s1", "--key-dir", path.join(dir, "keys"), ...localArgs()],
        ...["--report-ttl", "3", "--interval", "0", ...tls("site")],
        ...["--listen", `127.0.0.1:${PORT}`, "--token-file", path.join(dir, "token")],
      ],
      { reject: false, stdin: "ignore", buffer: false, cleanup: true },
    );
    agent.stdout?.on("data", (d: Buffer) => {
      agentOutput += d.toString();
    });
    agent.stderr?.on("data", (d: Buffer) => {
      agentOutput += d.toString();
    });
    const up = await eventually(
      () => ask("/healthz"),
      (r) => r.status === 200,
      30_000,
    );
    expect(up.status, agentOutput).toBe(200);
  }, 120_000);

  afterAll(async () => {
    if (agent?.pid !== undefined) {
      try {
        process.kill(agent.pid, "SIGTERM");
      } catch {
        // gone already
      }
      await Promise.race([agent, new Promise((r) => setTimeout(r, 5_000))]);
      try {
        process.kill(agent.pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    await cluster?.stop();
    for (const n of [ctl, site]) await n?.destroy();
    await segment?.sw.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it("serves /status and /metrics from the same resident that applies etcd's revisions", async () => {
    const { serial } = await publish(1);
    const ledger = await eventually(ledgerHash, (l) => l?.serial === serial, 30_000);
    expect(ledger?.serial, agentOutput).toBe(serial);
    const seen = await eventually(status, (s) => s?.policy?.hash === ledger?.hash, 10_000);
    expect(seen?.policy?.hash).toBe(ledger?.hash);
    expect(seen?.fleet).toMatchObject({ stale: false, agentRunning: true });
    expect(await addresses()).toContain("10.60.0.1/24");
    const metrics = await ask("/metrics");
    expect(metrics.body).toContain('netpol_fleet_stale{site="s1"} 0');
    expect(metrics.body).toMatch(/netpol_fleet_last_contact_age_seconds\{site="s1"\} \d/);
  }, 60_000);

  it("refuses a posted policy (etcd owns it) but plans one, and changes nothing", async () => {
    const posted = await ask("/apply", "POST", policy(3));
    expect(posted.status).toBe(409);
    expect(JSON.parse(posted.body)).toMatchObject({
      error: {
        code: "NETPOL_E_FLEET_MANAGED",
        message: expect.stringContaining("publish it there with `netpol publish POLICY --etcd"),
      },
    });
    const dry = await ask("/apply?dryRun=1", "POST", policy(3));
    expect(dry.status, dry.body).toBe(200);
    expect(dry.body).toContain("10.62.0.1/24");
    expect(await addresses()).not.toContain("10.62.0.1");
  }, 30_000);

  it("refuses a second resident on the site, naming the agent", async () => {
    const pid = must(agent?.pid, "agent pid");
    const serve = await netpolIn(siteNs(), [
      ...["serve", "--token-file", path.join(dir, "token"), "--listen", "127.0.0.1:9471"],
      ...localArgs(),
    ]);
    const watch = await netpolIn(siteNs(), [
      ...["watch", "--in-force", "--key-dir", path.join(dir, "keys")],
      ...["--netns", siteNs().name, "--state-dir", path.join(dir, "other-state")],
    ]);
    for (const [command, r] of [
      ["serve", serve],
      ["watch", watch],
    ] as const) {
      expect(r.exitCode, command).toBe(1);
      expect(r.stderr).toContain(
        `netpol ${command} not started: the resident process of namespace ${siteNs().name} is already running, \`netpol agent\` (pid ${pid},`,
      );
      expect(r.stderr).toContain("systemctl stop netpol-agent.service");
    }
    expect((await ask("/healthz")).status).toBe(200);
  }, 30_000);

  it("keeps its state cut off from etcd and says STALE with the age; healed, it catches up and clears", async () => {
    const cut = (op: "add" | "delete") =>
      siteNs().exec(
        op === "add"
          ? [
              "nft",
              // Both ways: a watch already open would still hear etcd through an input left open.
              "add table inet cut; add chain inet cut out { type filter hook output priority 0; }; add rule inet cut out tcp dport 2379 drop; add chain inet cut in { type filter hook input priority 0; }; add rule inet cut in tcp sport 2379 drop",
            ]
          : ["nft", "delete table inet cut"],
      );
    await cut("add");
    const local = () => netpolIn(siteNs(), ["status", ...localArgs()]);
    const stale = await eventually(
      local,
      (r) => /fleet: STALE: last reached etcd ([4-9]|\d\d+)s ago/.test(String(r.stdout)),
      20_000,
    );
    expect(String(stale.stdout)).toMatch(
      /fleet: STALE: last reached etcd \d+s ago \(.+\), agent pid \d+; the site keeps the policy in force/,
    );
    const json = await netpolIn(siteNs(), ["status", "--json", ...localArgs()]);
    const doc = JSON.parse(String(json.stdout)) as SiteStatusJson;
    expect(doc.fleet).toMatchObject({ stale: true, agentRunning: true });
    expect(doc.fleet?.lastContactAgeSeconds).toBeGreaterThan(3);
    // The agent's own front door says so too.
    const served = await eventually(status, (s) => s?.fleet?.stale === true, 10_000);
    expect(served?.fleet?.stale).toBe(true);
    const staleMetrics = await eventually(
      () => ask("/metrics"),
      (m) => m.body.includes('netpol_fleet_stale{site="s1"} 1'),
      10_000,
    );
    expect(staleMetrics.body).toContain('netpol_fleet_stale{site="s1"} 1');
    // Published meanwhile: it cannot reach the site, which keeps what it has.
    const { serial } = await publish(2);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await addresses()).toContain("10.60.0.1/24");
    expect(await addresses()).not.toContain("10.61.0.1");

    await cut("delete");
    const caught = await eventually(ledgerHash, (l) => l?.serial === serial, 40_000);
    expect(caught?.serial, agentOutput.slice(-3000)).toBe(serial);
    expect(await addresses()).toContain("10.61.0.1/24");
    const cleared = await eventually(
      local,
      (r) => String(r.stdout).includes("fleet: last reached etcd"),
      10_000,
    );
    expect(String(cleared.stdout)).not.toContain("STALE");
    const metrics = await eventually(
      () => ask("/metrics"),
      (m) => m.body.includes('netpol_fleet_stale{site="s1"} 0'),
      10_000,
    );
    expect(metrics.body).toContain('netpol_fleet_stale{site="s1"} 0');
  }, 120_000);
});
