/**
 * GET /status against a bare fastify hello-world route, in one run on one machine, each
 * loaded by autocannon from this process over loopback. The status is read from a namespace
 * this script creates (and removes) with a small applied policy.
 *
 *   npm run bench:status
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { execa } from "execa";
import Fastify, { type FastifyInstance } from "fastify";
import { applySite } from "../src/apply/apply.js";
import { targetOf } from "../src/apply/target.js";
import { parsePolicy } from "../src/policy/load.js";
import { buildApp } from "../src/server/app.js";
import { createRunner } from "../src/system/runner.js";
import { VLAN_EGRESS_POLICY } from "../test/support/vlan-egress.js";

const TOKEN = "bench-token-0123456789abcdef";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

async function load(app: FastifyInstance, url: string, headers: Record<string, string>) {
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  const r = await autocannon({ url: `${base}${url}`, connections: 10, duration: SECONDS, headers });
  await app.close();
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`${url}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

const ns = `npbench-${process.pid}`;
const stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-"));
try {
  await execa("ip", ["netns", "add", ns]);
  const inNs = (...args: string[]) => execa("ip", ["netns", "exec", ns, ...args]);
  await inNs("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1");
  await inNs("ip", "tuntap", "add", "ext0", "mode", "tun");
  for (const d of ["lan0", "lan1", "ext0"]) await inNs("ip", "link", "set", d, "up");
  const target = targetOf(createRunner(ns), stateDir);
  await applySite(
    target,
    { ...parsePolicy(VLAN_EGRESS_POLICY, "bench.yaml"), keyDir: stateDir, site: "home" },
    "bench",
  );

  const hello = Fastify();
  hello.get("/hello", async () => ({ ok: true }));
  const auth = { authorization: `Bearer ${TOKEN}` };
  const rows = [
    ["bare fastify GET /hello", await load(hello, "/hello", {})],
    [
      "netpol GET /status (1 s cache)",
      await load(await buildApp({ target, token: TOKEN, keyDir: stateDir }), "/status", auth),
    ],
    [
      "netpol GET /status (no cache)",
      await load(
        await buildApp({ target, token: TOKEN, keyDir: stateDir, statusMaxAgeMs: 0 }),
        "/status",
        auth,
      ),
    ],
  ] as const;
  const baseline = rows[0][1].rps;
  console.log(`\n${SECONDS} s each, 10 connections, loopback, ${os.cpus().length} CPUs\n`);
  console.log("| route | req/s | p50 ms | p99 ms | vs hello |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const [name, r] of rows) {
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${(r.rps / baseline).toFixed(3)} |`,
    );
  }
} finally {
  await execa("ip", ["netns", "delete", ns], { reject: false });
  await rm(stateDir, { recursive: true, force: true });
}
