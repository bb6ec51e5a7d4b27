import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { NetpolError } from "../../../src/errors.js";
import { Etcd } from "../../../src/fleet/etcd/client.js";

/**
 * The client against a stand-in for etcd's JSON gateway on loopback, answering as etcd 3.4
 * does (captured from a real member): what each refusal becomes, and which calls go on.
 */
type Answer = { status: number; body: string };
const servers: http.Server[] = [];

async function gateway(
  answer: (path: string, body: string, auth: string | undefined) => Answer,
): Promise<string> {
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => {
      body += d.toString();
    });
    req.on("end", () => {
      const a = answer(req.url ?? "", body, req.headers.authorization);
      res.writeHead(a.status, { "content-type": "application/json" });
      res.end(a.body);
    });
  });
  servers.push(server);
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port nothing listens on: bound, then closed. */
async function deadEndpoint(): Promise<string> {
  const url = await gateway(() => ({ status: 200, body: "{}" }));
  await new Promise((ok) => servers.pop()?.close(ok));
  return url;
}

const grpcError = (code: number, message: string): Answer => ({
  status: code === 7 ? 403 : 400,
  body: JSON.stringify({ error: message, code, message }),
});
const PUT_OK: Answer = { status: 200, body: '{"header":{"revision":"7"}}' };

afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((ok) => s.close(ok));
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => (err instanceof NetpolError ? { code: err.code, message: err.message } : err),
  );

describe("the etcd client", () => {
  it("says a role may not write a key: denied, not retried", async () => {
    let calls = 0;
    const url = await gateway(() => {
      calls++;
      return grpcError(7, "etcdserver: permission denied");
    });
    const etcd = new Etcd({ endpoints: [url] });
    expect(await failure(etcd.put("/netpol/head", "x"))).toMatchObject({
      code: "NETPOL_E_ETCD_DENIED",
      message: expect.stringMatching(/permission denied/),
    });
    expect(calls).toBe(1);
  });

  it("says how to make a client certificate etcd's gateway takes", async () => {
    const url = await gateway(() => ({
      status: 400,
      body: "CommonName of client sending a request against gateway will be ignored and not used as expected\n",
    }));
    expect(await failure(new Etcd({ endpoints: [url] }).put("/k", "v"))).toMatchObject({
      code: "NETPOL_E_ETCD_DENIED",
      message: expect.stringMatching(/empty CN/),
    });
  });

  it("goes on to the next member when one does not answer", async () => {
    const url = await gateway(() => PUT_OK);
    expect(await new Etcd({ endpoints: [await deadEndpoint(), url] }).put("/k", "v")).toBe(7);
  });

  it("waits out an election: no leader, then an answer", async () => {
    let calls = 0;
    const url = await gateway(() =>
      ++calls < 3 ? grpcError(14, "etcdserver: no leader") : PUT_OK,
    );
    expect(await new Etcd({ endpoints: [url] }).put("/k", "v")).toBe(7);
    expect(calls).toBe(3);
  });

  it("authenticates again once when etcd no longer takes its token", async () => {
    let tokens = 0;
    const url = await gateway((path, body, auth) => {
      if (path === "/v3/auth/authenticate") {
        expect(JSON.parse(body)).toEqual({ name: "site-a", password: "pw" });
        return { status: 200, body: JSON.stringify({ token: `t${++tokens}` }) };
      }
      return auth === "t2" ? PUT_OK : grpcError(16, "etcdserver: invalid auth token");
    });
    const etcd = new Etcd({ endpoints: [url], auth: { user: "site-a", password: "pw" } });
    expect(await etcd.put("/k", "v")).toBe(7);
    expect(tokens).toBe(2);
  });

  it("says no member answered when none does", async () => {
    const etcd = new Etcd({ endpoints: [await deadEndpoint()], timeoutMs: 200 });
    expect(await failure(etcd.put("/k", "v"))).toMatchObject({ code: "NETPOL_E_ETCD_UNREACHABLE" });
  });

  it("quotes etcd's refusal of a value too large, with the setting that allows it", async () => {
    const url = await gateway(() => grpcError(3, "etcdserver: request is too large"));
    expect(await failure(new Etcd({ endpoints: [url] }).put("/k", "v"))).toMatchObject({
      code: "NETPOL_E_ETCD_FAILED",
      message: expect.stringMatching(/--max-request-bytes/),
    });
  });
});
