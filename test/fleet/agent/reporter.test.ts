import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Reporter } from "../../../src/fleet/agent/reporter.js";
import { Etcd } from "../../../src/fleet/etcd/client.js";

/**
 * The reports against a stand-in for etcd's JSON gateway on loopback, which forgets the first
 * lease it granted as etcd does once it expired (answering a write under it as etcd 3.4 does).
 */
let server: http.Server | undefined;
afterEach(async () => {
  await new Promise((ok) => server?.close(ok));
});

interface Write {
  readonly path: string;
  readonly lease: string | undefined;
}

async function forgetfulEtcd(): Promise<{ url: string; writes: Write[] }> {
  const writes: Write[] = [];
  let granted = 0;
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString();
    });
    req.on("end", () => {
      const answer = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (req.url === "/v3/lease/grant") {
        granted++;
        answer(200, { ID: String(granted), TTL: "60" });
        return;
      }
      const text = JSON.stringify(JSON.parse(body));
      const lease = /"lease":"?(\d+)/.exec(text)?.[1];
      writes.push({ path: req.url ?? "", lease });
      if (lease === "1") {
        const message = "etcdserver: requested lease not found";
        answer(404, { error: message, code: 5, message });
        return;
      }
      answer(200, { header: { revision: "9" }, succeeded: true, responses: [] });
    });
  });
  await new Promise<void>((ok) => server?.listen(0, "127.0.0.1", ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, writes };
}

const reporterOn = (url: string) =>
  new Reporter(
    new Etcd({ endpoints: [url] }),
    "home",
    60,
    { lost: () => undefined, contact: () => undefined },
    { serial: 0, state: "starting", drift: 0, tunnels: { up: 0, of: 0 } },
  );

describe("the site's reports", () => {
  it("writes the live report under a new lease when etcd forgot the one it had", async () => {
    const { url, writes } = await forgetfulEtcd();
    await reporterOn(url).update({ state: "waiting" });
    expect(writes).toEqual([
      { path: "/v3/kv/put", lease: "1" },
      { path: "/v3/kv/put", lease: "2" },
    ]);
  });

  it("writes the ledger and the live report under a new lease when etcd forgot the one it had", async () => {
    const { url, writes } = await forgetfulEtcd();
    const ledger = { serial: 3, result: "applied" as const, failuresBefore: 0, hash: "h", at: "t" };
    await reporterOn(url).record(ledger, { serial: 3, state: "in force" });
    expect(writes).toEqual([
      { path: "/v3/kv/txn", lease: "1" },
      { path: "/v3/kv/txn", lease: "2" },
    ]);
  });
});
