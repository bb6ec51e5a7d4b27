import { setMaxListeners } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Etcd } from "../../../src/fleet/etcd/client.js";
import type { Following, KeyRange } from "../../../src/fleet/etcd/follow.js";
import type { WatchEvent } from "../../../src/fleet/etcd/watch.js";
import { shareWatch, WatchHub } from "../../../src/fleet/etcd/watch-hub.js";
import { desiredKey, ledgerKey, liveKey, ROOT } from "../../../src/fleet/keys.js";

/**
 * The shared watch against a stand-in for etcd's JSON gateway on loopback: its watch streams
 * are held open and fed by the test, line by line as etcd 3.4 writes them, and each stream's
 * start revision is noted (where the hub resumed).
 */
interface Stream {
  readonly start: number;
  readonly res: http.ServerResponse;
}
const b64 = (s: string) => Buffer.from(s).toString("base64");
const line = (result: unknown) => `${JSON.stringify({ result })}\n`;

let server: http.Server | undefined;
let stop = new AbortController();
beforeEach(() => {
  stop = new AbortController();
});
afterEach(async () => {
  stop.abort();
  server?.closeAllConnections();
  await new Promise((ok) => server?.close(ok));
});

async function gateway(revision: number): Promise<{ url: string; streams: Stream[] }> {
  const streams: Stream[] = [];
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString();
    });
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      if (req.url !== "/v3/watch") {
        res.end(JSON.stringify({ header: { revision: String(revision) } }));
        return;
      }
      const start = Number(
        (JSON.parse(body) as { create_request: { start_revision: string } }).create_request
          .start_revision,
      );
      res.write(line({ header: { revision: String(revision) }, created: true }));
      streams.push({ start, res });
    });
  });
  await new Promise<void>((ok) => server?.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, streams };
}

const put = (key: string, rev: number) => ({
  kv: { key: b64(key), value: b64(`v${rev}`), mod_revision: String(rev) },
});

async function until<T>(what: () => T | undefined): Promise<T> {
  for (;;) {
    const v = what();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A subscriber as an agent is one: what it was handed, as "key@revision"; `from`: read done. */
function subscriber(hub: WatchHub, range: KeyRange, from?: number) {
  const heard: string[] = [];
  const following: Following = hub.follow(
    range,
    (events: readonly WatchEvent[]) => {
      for (const e of events) heard.push(`${e.kv.key}@${e.kv.modRevision}`);
    },
    stop.signal,
  );
  if (from !== undefined) following.from(from);
  return { heard, following };
}

/** A hub over the stand-in, which is at revision 10 when the hub reads where to start. */
async function sharedHub(): Promise<{ hub: WatchHub; streams: Stream[]; first: Stream }> {
  const { url, streams } = await gateway(10);
  const hub = await shareWatch(new Etcd({ endpoints: [url] }), ROOT, stop.signal);
  return { hub, streams, first: await until(() => streams[0]) };
}

const waveRange = { key: ledgerKey("hub0"), rangeEnd: `${ledgerKey("hub1")}\0` };

describe("one watch shared by the agents of a process", () => {
  it("hands each agent its own key's events only, from the revision after its own read", async () => {
    const { hub, first: stream } = await sharedHub();
    expect(stream.start).toBe(11);
    const a = subscriber(hub, { key: desiredKey("a") });
    const b = subscriber(hub, { key: desiredKey("b") });
    const wave = subscriber(hub, waveRange);
    // Hears everything at once: says when the hub has had the events written meanwhile.
    const all = subscriber(hub, { key: ROOT, rangeEnd: "/netpol0" }, 0);
    // Written while the agents read their keys: a's read saw revision 11 already.
    stream.res.write(line({ events: [put(desiredKey("a"), 11)] }));
    stream.res.write(
      line({
        events: [put(desiredKey("b"), 12), put(ledgerKey("hub0"), 12), put(liveKey("s5"), 12)],
      }),
    );
    stream.res.write(line({ events: [put(ledgerKey("hub1"), 13)] }));
    await until(() => (all.heard.length === 5 ? true : undefined));
    expect([...a.heard, ...b.heard, ...wave.heard]).toEqual([]);
    a.following.from(12);
    b.following.from(12);
    wave.following.from(11);
    stream.res.write(line({ events: [put(desiredKey("a"), 14), put(liveKey("hub9"), 14)] }));
    await until(() => (a.heard.length > 0 ? true : undefined));
    await until(() => (wave.heard.length === 2 ? true : undefined));
    expect(a.heard).toEqual([`${desiredKey("a")}@14`]);
    expect(b.heard).toEqual([`${desiredKey("b")}@12`]);
    expect(wave.heard).toEqual([`${ledgerKey("hub0")}@12`, `${ledgerKey("hub1")}@13`]);
  });

  it("resumes after a lost stream from the revision after the last one seen, nothing twice", async () => {
    const { hub, streams, first } = await sharedHub();
    const a = subscriber(hub, { key: desiredKey("a") }, 11);
    const b = subscriber(hub, { key: desiredKey("b") }, 11);
    first.res.end(line({ events: [put(desiredKey("a"), 11), put(desiredKey("b"), 12)] }));
    const second = await until(() => streams[1]);
    expect(second.start).toBe(13);
    second.res.write(line({ events: [put(desiredKey("b"), 13)] }));
    await until(() => (b.heard.length === 2 ? true : undefined));
    expect(a.heard).toEqual([`${desiredKey("a")}@11`]);
    expect(b.heard).toEqual([`${desiredKey("b")}@12`, `${desiredKey("b")}@13`]);
  });

  it("tells every agent of a compaction, then goes on from it for the agents that read again", async () => {
    const { hub, streams, first } = await sharedHub();
    const a = subscriber(hub, { key: desiredKey("a") }, 11);
    const wave = subscriber(hub, waveRange, 11);
    first.res.write(line({ compact_revision: "20", canceled: true }));
    expect(await a.following.done).toEqual({ kind: "compacted", compactRevision: 20 });
    expect(await wave.following.done).toEqual({ kind: "compacted", compactRevision: 20 });
    const second = await until(() => streams[1]);
    expect(second.start).toBe(20);
    // The agent reads its key again (at 21) and follows from there.
    const again = subscriber(hub, { key: desiredKey("a") });
    second.res.write(line({ events: [put(desiredKey("a"), 21)] }));
    again.following.from(22);
    second.res.write(line({ events: [put(desiredKey("a"), 22)] }));
    await until(() => (again.heard.length > 0 ? true : undefined));
    expect(again.heard).toEqual([`${desiredKey("a")}@22`]);
    expect(a.heard).toEqual([]);
  });

  it("reconnects once when all its agents lose etcd together, and stops each agent that stops", async () => {
    let kicks = 0;
    const opened: number[] = [];
    const hub = new WatchHub(
      (start, _onEvents, signal) => {
        opened.push(start);
        return {
          kick: () => kicks++,
          done: new Promise((ok) =>
            signal.addEventListener("abort", () => ok({ kind: "stopped" }), { once: true }),
          ),
        };
      },
      5,
      stop.signal,
    );
    setMaxListeners(0, stop.signal);
    const own = new AbortController();
    const agents = Array.from({ length: 50 }, (_, i) =>
      hub.follow({ key: desiredKey(`s${i}`) }, () => undefined, i === 0 ? own.signal : stop.signal),
    );
    for (const f of agents) f.kick();
    expect(kicks).toBe(1);
    expect(opened).toEqual([5]);
    own.abort();
    expect(await agents[0]?.done).toEqual({ kind: "stopped" });
  });
});
