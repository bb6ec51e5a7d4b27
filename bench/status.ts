/**
 * GET /status against a bare fastify hello-world route, in one run on one machine, each
 * loaded by autocannon from this process over loopback. The status is read from a namespace
 * this script creates (and removes) with a small applied policy.
 *
 * netpol's server runs as `netpol serve` does, in front of the site's resident (the status read
 * from its live model; max age 1 s, served stale for up to 30 s while a new status is read). Its cache is loaded at three ages — just read (0), half its max age
 * (0.5 s) and long expired (EXPIRED_MS, 5 s; any age past the max age is served alike) — and once with a max age of 0, where a new read starts
 * as soon as the last one's rest is over (src/server/revalidating.ts). Targets (issue 19): ≥ 0.5× bare fastify's req/s, p99 ≤ 50 ms.
 * "CPU µs/req" is this process's CPU (server and autocannon) and its children's (the status
 * read's tools) per request answered: less swayed by the other work on the machine than req/s.
 *
 *   npm run bench:status                  # 5 s per row
 *   BENCH_SECONDS=1 EXPIRED_MS=1500 npm run bench:status  # what `npm run bench -- --quick` runs
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import Fastify, { type FastifyInstance } from "fastify";
import type { Target } from "../src/apply/target.js";
import { inForceFeed } from "../src/resident/policy-feed.js";
import { Resident } from "../src/resident/resident.js";
import { buildApp } from "../src/server/app.js";
import { statusBenchSite } from "./namespace.js";

const TOKEN = "bench-token-0123456789abcdef";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** The age of the long-expired cache: past the max age of 1 s, so the row waits this long first. */
const EXPIRED_MS = Number(process.env.EXPIRED_MS ?? 5000);
const auth = { authorization: `Bearer ${TOKEN}` };

interface Loaded {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuPerRequestUs: number;
}

/** CPU time in µs: this process's, and that of its children it has waited for (/proc). */
function cpuUs(): number {
  const own = process.cpuUsage();
  // Fields 16 and 17 of /proc/self/stat, after the command's closing parenthesis.
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(fields[13]) + Number(fields[14]);
  return own.user + own.system + (ticks * 1e6) / 100;
}

async function load(app: FastifyInstance, url: string, headers: Record<string, string>) {
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  return loadAt(base, url, headers);
}

async function loadAt(base: string, url: string, headers: Record<string, string>) {
  const cpu = cpuUs();
  const r = await autocannon({ url: `${base}${url}`, connections: 10, duration: SECONDS, headers });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`${url}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    cpuPerRequestUs: (cpuUs() - cpu) / Math.max(1, r.requests.total),
  };
}

/** netpol's server with its status read `ageMs` ago, loaded on /status. */
/** The site's resident, running in this process as `netpol serve` runs it. */
async function residentOf(target: Target, keyDir: string) {
  const resident = new Resident({
    target,
    feed: inForceFeed(target, { keyDir }),
    by: "bench",
    intervalMs: 0,
  });
  let watching = false;
  resident.bus.on((e) => {
    if (e.event === "watching") watching = true;
  });
  const stop = new AbortController();
  const running = resident.run(stop.signal);
  while (!watching) await sleep(10);
  return {
    resident,
    async stop() {
      stop.abort();
      await running;
    },
  };
}

async function statusAt(
  target: Target,
  resident: Resident,
  ageMs: number,
  maxAgeMs?: number,
): Promise<Loaded> {
  const app = await buildApp({
    target,
    resident,
    token: TOKEN,
    keyDir: "/nonexistent",
    // As `netpol serve` runs; for max age 0, the same stale window.
    ...(maxAgeMs !== undefined ? { statusMaxAgeMs: maxAgeMs, statusStaleMs: 30_000 } : {}),
  });
  try {
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    const first = await fetch(`${base}/status`, { headers: auth });
    if (first.status !== 200) throw new Error(`/status answered ${first.status}`);
    await first.arrayBuffer();
    await sleep(ageMs);
    return await loadAt(base, "/status", auth);
  } finally {
    await app.close();
  }
}

const site = await statusBenchSite();
const held = await residentOf(site.target, site.stateDir);
try {
  const { target } = site;
  const { resident } = held;

  const hello = Fastify();
  hello.get("/hello", async () => ({ ok: true }));
  const bare = await load(hello, "/hello", {});
  await hello.close();
  const rows: [string, Loaded][] = [["bare fastify GET /hello", bare]];
  for (const age of [0, 500, EXPIRED_MS]) {
    rows.push([
      `netpol GET /status, cache ${age / 1000} s old`,
      await statusAt(target, resident, age),
    ]);
  }
  rows.push([
    "netpol GET /status, max age 0 (reads one after another, paced)",
    await statusAt(target, resident, 0, 0),
  ]);
  const load1 = os.loadavg()[0]?.toFixed(1);
  console.log(
    `\n${SECONDS} s each, 10 connections, loopback, ${os.cpus().length} CPUs, load ${load1}\n`,
  );
  console.log("| route | req/s | p50 ms | p99 ms | CPU µs/req | vs bare | target |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const [name, r] of rows) {
    const ratio = r.rps / bare.rps;
    const target = r === bare ? "" : ratio >= 0.5 && r.p99 <= 50 ? "met" : "**missed**";
    console.log(
      `| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${Math.round(r.cpuPerRequestUs)} | ${ratio.toFixed(3)} | ${target} |`,
    );
  }
} finally {
  await held.stop();
  await site.destroy();
}
