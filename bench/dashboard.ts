/**
 * Does an open page cost `/status` anything? GET /status loaded by autocannon with no event
 * stream open, then with 50 (the page's `GET /events`, each kept open), in pairs back to back,
 * in one run on one machine, from one app serving a namespace this script creates (and
 * removes) with a small applied policy. Target: 50 streams slow /status by at most 10 %.
 *
 *   npm run bench:dashboard
 */
import os from "node:os";
import autocannon from "autocannon";
import { buildApp } from "../src/server/app.js";
import { statusBenchSite } from "./namespace.js";

const TOKEN = "bench-token-0123456789abcdef";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const STREAMS = 50;
const auth = { authorization: `Bearer ${TOKEN}` };

async function load(base: string) {
  const r = await autocannon({
    url: `${base}/status`,
    connections: 10,
    duration: SECONDS,
    headers: auth,
  });
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`${r.non2xx} non-2xx answers, ${r.errors} errors`);
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
}

/** Opens `n` event streams and reads each until it is closed; resolves once all sent their first regions. */
async function openStreams(base: string, n: number) {
  const stop = new AbortController();
  let events = 0;
  const opened = Array.from({ length: n }, async () => {
    const r = await fetch(`${base}/events`, { headers: auth, signal: stop.signal });
    const reader = r.body?.getReader();
    const first = (async () => {
      for (;;) {
        const chunk = await reader?.read();
        if (!chunk || chunk.done) return;
        events += (new TextDecoder().decode(chunk.value).match(/event: regions/g) ?? []).length;
      }
    })().catch(() => undefined);
    return first;
  });
  while (events < n) await new Promise((r) => setTimeout(r, 50));
  return {
    events: () => events,
    close: async () => {
      stop.abort();
      await Promise.all(opened);
    },
  };
}

const site = await statusBenchSite();
try {
  const { target, stateDir } = site;
  const app = await buildApp({ target, token: TOKEN, keyDir: stateDir });
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  const rows: [string, Awaited<ReturnType<typeof load>>][] = [];
  const ratios: number[] = [];
  // Pairs, back to back: on a shared machine the load drifts more between minutes than
  // within a pair, so each pair's ratio is the measure, and the median of them the result.
  let sent = 0;
  const loaded = async () => {
    const streams = await openStreams(base, STREAMS);
    const before = streams.events();
    const r = await load(base);
    sent += streams.events() - before;
    await streams.close();
    return r;
  };
  // A first load of each kind warms the server (JIT, connections, the page's first look).
  await load(base);
  await loaded();
  sent = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    // Each side goes first every other round: the second of a pair runs on a warmer machine.
    const first = round % 2 === 1;
    const early = first ? await loaded() : undefined;
    const without = await load(base);
    const withStreams = early ?? (await loaded());
    rows.push(
      [`no stream open (${round})`, without],
      [`${STREAMS} streams open (${round})`, withStreams],
    );
    ratios.push(withStreams.rps / without.rps);
  }
  await app.close();
  const sorted = [...ratios].sort((a, b) => a - b);
  const median = ((sorted[(ROUNDS - 1) >> 1] ?? 0) + (sorted[ROUNDS >> 1] ?? 0)) / 2;
  console.log(
    `\n${SECONDS} s each, 10 connections, loopback, ${os.cpus().length} CPUs, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}\n`,
  );
  console.log("| GET /status | req/s | p50 ms | p99 ms |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const [name, r] of rows)
    console.log(`| ${name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} |`);
  console.log(
    `\npair ratios (with / without): ${ratios.map((r) => r.toFixed(3)).join(", ")}; median ${median.toFixed(3)} (${median >= 0.9 ? "within" : "BEYOND"} the 10 % budget); the open streams received ${sent} updates while loaded`,
  );
} finally {
  await site.destroy();
}
