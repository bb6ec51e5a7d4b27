/**
 * bench/fleet.ts's stopwatch, in the bench's namespace: follows etcd from now, notes when the
 * head changes and when each site's ledger reaches its revision; prints p50, p99 and the last
 * site (seconds after the head), and how many writes etcd took meanwhile (its revision).
 */
import { Etcd } from "../src/fleet/etcd/client.js";
import { watch } from "../src/fleet/etcd/watch.js";
import { HEAD, ROOT, reportKeyOf } from "../src/fleet/keys.js";

const [endpoint = "", count = "0"] = process.argv.slice(2);
const sites = Number(count);
const etcd = new Etcd({ endpoints: [endpoint], timeoutMs: 30_000 });
const { revision } = await etcd.get(HEAD);
const stop = new AbortController();
let serial = 0;
let headAt = 0;
let headRevision = 0;
let lastRevision = 0;
const reached = new Map<string, number>();
process.stdout.write("watching\n");
const done = new Promise<void>((finish) => {
  watch(
    etcd,
    ROOT,
    { prefix: true, startRevision: revision + 1 },
    (events) => {
      const now = Date.now();
      for (const e of events) {
        if (e.kv.key === HEAD) {
          serial = (JSON.parse(e.kv.value) as { serial: number }).serial;
          headAt = now;
          headRevision = e.kv.modRevision;
          continue;
        }
        const at = reportKeyOf(e.kv.key);
        if (at?.kind !== "ledger" || serial === 0) continue;
        if (
          (JSON.parse(e.kv.value) as { serial: number }).serial >= serial &&
          !reached.has(at.site)
        ) {
          reached.set(at.site, (now - headAt) / 1000);
          lastRevision = e.kv.modRevision;
        }
      }
      if (reached.size === sites) finish();
    },
    stop.signal,
  );
});
await done;
stop.abort();
const times = [...reached.values()].sort((a, b) => a - b);
const pick = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0;
const last = times.at(-1) ?? 0;
process.stdout.write(
  `${JSON.stringify({ p50: pick(0.5), p99: pick(0.99), last, writes: lastRevision - headRevision, seconds: last })}\n`,
);
etcd.close();
process.exit(0);
