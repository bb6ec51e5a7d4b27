import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { sendStatus } from "../../src/server/status-answer.js";
import type { SiteStatus } from "../../src/status/collect.js";

/** A status that counts how often it is serialised. */
function countedStatus(site: string) {
  const counted = { times: 0 };
  const status = {
    site,
    toJSON() {
      counted.times++;
      return { site };
    },
  } as unknown as SiteStatus;
  return { status, counted };
}

async function serving(status: SiteStatus, readAt: number, now: number) {
  const app = Fastify();
  app.get("/status", async (request, reply) => sendStatus(request, reply, status, readAt, now));
  await app.ready();
  return app;
}

describe("a status as GET /status sends it", () => {
  it("sends its JSON, serialised once for every request it answers", async () => {
    const { status, counted } = countedStatus("home");
    const app = await serving(status, 1_000, 1_000);
    for (let i = 0; i < 3; i++) {
      const r = await app.inject({ url: "/status" });
      expect(r.statusCode).toBe(200);
      expect(r.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(r.json()).toEqual({ site: "home" });
    }
    expect(counted.times).toBe(1);
    await app.close();
  });

  it("says how old it is in whole seconds", async () => {
    const app = await serving(countedStatus("home").status, 10_000, 12_999);
    expect((await app.inject({ url: "/status" })).headers.age).toBe("2");
    await app.close();
  });

  it("answers 304 to a client that holds the same answer, 200 to one that holds another", async () => {
    const app = await serving(countedStatus("home").status, 0, 0);
    const first = await app.inject({ url: "/status" });
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[\w-]+"$/);
    const same = await app.inject({
      url: "/status",
      headers: { "if-none-match": `"other", ${etag}` },
    });
    expect(same.statusCode).toBe(304);
    expect(same.body).toBe("");
    const other = await app.inject({ url: "/status", headers: { "if-none-match": '"other"' } });
    expect(other.statusCode).toBe(200);
    await app.close();
    // Another status with other content is another answer.
    const next = await serving(countedStatus("vps").status, 0, 0);
    const changed = await next.inject({ url: "/status", headers: { "if-none-match": etag } });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers.etag).not.toBe(etag);
    await next.close();
  });
});
