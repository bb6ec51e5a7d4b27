import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { readCaddy, readUpstreams } from "../../../src/system/caddy/admin.js";
import { createRunner } from "../../../src/system/runner.js";
import { describeLive } from "../../support/layers.js";

// A Caddy admin API that answers with a Content-Length shorter than its body (a broken proxy
// in front of it, say), on this machine's loopback: what netpol makes of it, through the real
// runner and request process.
describeLive("Caddy's admin API answering a body longer than its Content-Length", () => {
  let server: net.Server;
  let admin: string;

  beforeAll(async () => {
    server = net.createServer((socket) => {
      socket.once("data", () => {
        const body = '{"apps":{"http":{"servers":{}}}}';
        socket.end(
          `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nEtag: "x"\r\nContent-Length: 5\r\n\r\n${body}`,
        );
      });
    });
    await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
    admin = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(() => {
    server?.close();
  });

  it("is an admin API that does not answer, not a crash", async () => {
    const live = await readCaddy(createRunner(), admin);
    expect(live).toMatchObject({
      reachable: false,
      error: expect.stringMatching(/^GET \/config\//),
    });
    expect(await readUpstreams(createRunner(), admin)).toBeUndefined();
  });
});
