/**
 * One real `netpol agent` process (the bundled CLI, `node bin/netpol.js agent`) following a
 * one-member etcd in a namespace this script creates, idle (nothing published for its site), for
 * its resident memory; beside it, in the same run and namespace, the smallest Node process that
 * stays up (`node -e "setInterval(()=>{},1000)"`), Node's own floor. Target: the agent ≤ 60 MB.
 *
 *   npm run build && npx tsx bench/agent-memory.ts [--seconds 8] [--published]
 *
 * With --published, a one-site policy is published first, so the agent applies it (a first
 * apply, the resident's first reconcile) before it goes idle: what an agent holds in a fleet.
 * With --restarted too, that agent is stopped once it reported the revision and started again:
 * the site after a reboot, holding the policy in force from its compiled cache.
 *
 * The agent runs with the node flags its systemd unit gives it (NETPOL_AGENT_NODE_FLAGS in
 * deploy/systemd/netpol-agent.service); `--node-flags "..."` tries others, `--node-flags ""`
 * none (bin/netpol.js as its shebang runs it).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa, type ResultPromise } from "execa";
import { ENDPOINT, kill, startEtcd } from "../test/support/etcd-member.js";
import { suffix } from "./namespace.js";

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const SECONDS = Number(arg("--seconds", "8"));
const RESTARTED = process.argv.includes("--restarted");
const PUBLISHED = RESTARTED || process.argv.includes("--published");
/** The node flags the agent's unit runs it with. */
async function unitFlags(): Promise<string> {
  const unit = await readFile("deploy/systemd/netpol-agent.service", "utf8");
  const flags = /^Environment="NETPOL_AGENT_NODE_FLAGS=([^"]*)"$/m.exec(unit)?.[1];
  if (flags === undefined) throw new Error("netpol-agent.service sets no NETPOL_AGENT_NODE_FLAGS");
  return flags;
}
const NODE_FLAGS = (
  process.argv.includes("--node-flags") ? arg("--node-flags", "") : await unitFlags()
)
  .split(" ")
  .filter(Boolean);

const POLICY = `version: 1
sites:
  home:
    interfaces: [{ name: eth0, kind: physical }]
    networks: [{ name: lan, cidr: 10.77.0.0/24, interface: eth0, address: 10.77.0.1 }]
`;

/** VmRSS and VmHWM of a process, in kB (through `ip netns exec`: its child is the node). */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** The node process under `ip netns exec` (which execs, so the same PID; checked by its name). */
async function nodePid(child: ResultPromise): Promise<number> {
  const pid = child.pid as number;
  for (let i = 0; i < 50; i++) {
    const comm = (await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")).trim();
    if (comm === "node") return pid;
    await sleep(100);
  }
  throw new Error(`process ${pid} never became node`);
}

const ns = `npagentmem-${suffix()}`;
const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-agent-memory-"));
const started: ResultPromise[] = [];
let etcd: { stop(): Promise<void> } | undefined;
try {
  await execa("ip", ["netns", "add", ns]);
  await execa("ip", ["netns", "exec", ns, "ip", "-batch", "-"], {
    input: "link set lo up\nlink add eth0 type veth peer name eth0p\nlink set eth0 up\n",
  });
  etcd = await startEtcd(ns, dir);
  const inNs = (argv: readonly string[]) =>
    execa("ip", ["netns", "exec", ns, ...argv], {
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      reject: false,
    });
  if (PUBLISHED) {
    const file = path.join(dir, "policy.yaml");
    await writeFile(file, POLICY);
    const r = await execa(
      "ip",
      ["netns", "exec", ns, process.execPath, "bin/netpol.js", "publish", file, "--etcd", ENDPOINT],
      { reject: false },
    );
    if (r.exitCode !== 0) throw new Error(`publish: ${r.stderr}`);
  }
  const keyDir = path.join(dir, "keys");
  await mkdir(keyDir, { mode: 0o700 });
  // As the unit runs it: node with the unit's flags, or through the shebang without any.
  const startAgent = () =>
    inNs([
      ...(NODE_FLAGS.length > 0 ? [process.execPath, ...NODE_FLAGS] : []),
      ...["bin/netpol.js", "agent", "--site", "home", "--etcd", ENDPOINT],
      ...["--key-dir", keyDir, "--state-dir", path.join(dir, "state"), "--netns", ns, "--quiet"],
    ]);
  let agent = startAgent();
  if (RESTARTED) {
    started.push(agent);
    for (let i = 0; ; i++) {
      const ledger = await execa("ip", [
        ...["netns", "exec", ns, "etcdctl", "--endpoints", ENDPOINT],
        ...["get", "/netpol/reports/home/ledger", "--print-value-only"],
      ]);
      if (ledger.stdout.includes('"serial":1')) break;
      if (i > 100) throw new Error("the agent never reported revision 1");
      await sleep(200);
    }
    agent.kill("SIGTERM");
    await agent.catch(() => undefined);
    agent = startAgent();
  }
  const floor = inNs([process.execPath, "-e", "setInterval(()=>{},1000)"]);
  started.push(agent, floor);
  const [agentPid, floorPid] = [await nodePid(agent), await nodePid(floor)];
  await sleep(SECONDS * 1000);
  if (agent.exitCode !== undefined && agent.exitCode !== null)
    throw new Error(`the agent ended: ${(await agent).stderr}`);
  const [a, f] = [await memoryOf(agentPid), await memoryOf(floorPid)];
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  console.log(
    `agent memory: idle ${SECONDS} s${RESTARTED ? " after a restart, holding a one-site policy in force" : PUBLISHED ? " after applying a one-site policy" : ", nothing published"}; load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}; ${process.version}; node flags: ${NODE_FLAGS.join(" ") || "none"}`,
  );
  console.log("| process | RSS (MB) | peak RSS (MB) | vs node floor |");
  console.log("| --- | ---: | ---: | ---: |");
  console.log(`| node -e "setInterval(()=>{},1000)" | ${mb(f.rss)} | ${mb(f.peak)} | 1.00× |`);
  console.log(
    `| netpol agent | ${mb(a.rss)} | ${mb(a.peak)} | ${(a.rss / f.rss).toFixed(2)}× (+${mb(a.rss - f.rss)} MB) |`,
  );
  console.log(`target: agent RSS ≤ 60 MB: ${a.rss / 1024 <= 60 ? "met" : "MISSED"}`);
} finally {
  for (const c of started) kill(c.pid);
  await Promise.all(started.map((c) => c.catch(() => undefined)));
  await etcd?.stop();
  await execa("ip", ["netns", "del", ns], { reject: false });
  await rm(dir, { recursive: true, force: true });
}
