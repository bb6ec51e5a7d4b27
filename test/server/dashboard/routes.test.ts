import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { targetOf } from "../../../src/apply/target.js";
import { buildApp } from "../../../src/server/app.js";
import { fakeNode, ipJson, type TestNode } from "../../support/node.js";
import { VLAN_EGRESS_POLICY } from "../../support/vlan-egress.js";

const TOKEN = "dashboard-admin-token-0123456789";
const VIEWER = "dashboard-viewer-token-0123456789";
const FORM = { "content-type": "application/x-www-form-urlencoded" };

/** The page's login, session, CSRF and actions, on a fake kernel: no root, no browser. */
describe("the dashboard's routes", () => {
  let node: TestNode;
  let stateDir: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    node = fakeNode();
    await node.run("ip", ["link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await node.run("ip", ["tuntap", "add", "ext0", "mode", "tun"]);
    for (const d of ["lan0", "lan1", "ext0"]) await node.run("ip", ["link", "set", d, "up"]);
    stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-dash-"));
    app = await buildApp({
      target: targetOf(node.runner(), stateDir),
      token: TOKEN,
      viewerToken: VIEWER,
      keyDir: stateDir,
      site: "home",
      statusMaxAgeMs: 0,
      revertTimer: () => undefined,
      applyLimit: { max: 100, timeWindow: 60_000 },
      loginLimit: { max: 100, timeWindow: 60_000 },
    });
    const r = await apply("");
    expect(r.statusCode, r.body).toBe(200);
  });
  afterAll(async () => {
    await app?.close();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  function apply(query: string, policy = VLAN_EGRESS_POLICY) {
    return app.inject({
      method: "POST",
      url: `/apply${query}`,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/yaml" },
      payload: policy,
    });
  }

  async function login(token: string) {
    const r = await app.inject({
      method: "POST",
      url: "/login",
      headers: FORM,
      payload: `token=${encodeURIComponent(token)}`,
    });
    const cookie = String(r.headers["set-cookie"] ?? "").split(";")[0] ?? "";
    const page = await app.inject({ url: "/", headers: { cookie } });
    const csrf = /name="csrf-token" content="([^"]*)"/.exec(page.body)?.[1] ?? "";
    return { r, cookie, csrf, page };
  }

  const addresses = async () =>
    (await ipJson(node, ["address", "show", "dev", "lan0"])).flatMap((l) =>
      ((l.addr_info ?? []) as { local: string; family: string }[])
        .filter((a) => a.family === "inet")
        .map((a) => a.local),
    );

  const post = (url: string, headers: Record<string, string>, payload?: string) =>
    app.inject({ method: "POST", url, headers, ...(payload !== undefined ? { payload } : {}) });

  it("answers / with 401 and the login form, and /events with 401, without a session", async () => {
    const page = await app.inject({ url: "/" });
    expect(page.statusCode).toBe(401);
    expect(page.headers["content-type"]).toContain("text/html");
    expect(page.body).toContain('<form method="post" action="/login">');
    const events = await app.inject({ url: "/events" });
    expect(events.statusCode).toBe(401);
    expect(events.json().error.code).toBe("NETPOL_E_UNAUTHORIZED");
    // The rest stays as it was: no token, 401, whatever the route.
    expect((await app.inject({ url: "/nowhere" })).statusCode).toBe(401);
    expect((await app.inject({ url: "/healthz" })).statusCode).toBe(200);
  });

  it("exchanges the token for an HttpOnly, SameSite=Strict session cookie; a wrong one gets 401", async () => {
    const wrong = await login("not-the-token-at-all-0000");
    expect(wrong.r.statusCode).toBe(401);
    expect(wrong.r.headers["set-cookie"]).toBeUndefined();
    const { r, page } = await login(TOKEN);
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe("/");
    const cookie = String(r.headers["set-cookie"]);
    expect(cookie).toMatch(
      /^netpol_session=[A-Za-z0-9_-]{40,}; Path=\/; HttpOnly; SameSite=Strict$/,
    );
    expect(cookie).not.toContain(TOKEN);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain(TOKEN);
    expect(page.body).toContain('data-item="home/egress/out"');
  });

  it("sends a strict Content-Security-Policy and loads nothing from elsewhere", async () => {
    const { page } = await login(TOKEN);
    expect(page.headers["content-security-policy"]).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    expect(page.headers["x-frame-options"]).toBe("DENY");
    // Every src and href is a path on this server; no inline script or style.
    for (const [, url] of page.body.matchAll(/(?:src|href)="([^"]*)"/g))
      expect(url).toMatch(/^\/[^/]/);
    expect(page.body).not.toMatch(/<script>|<style|style="/);
    for (const [, url] of page.body.matchAll(/(?:src|href)="(\/ui\/[^"]*)"/g)) {
      const asset = await app.inject({ url });
      expect(asset.statusCode, url).toBe(200);
      expect(asset.headers["cache-control"]).toContain("immutable");
    }
  });

  it("refuses a change from the page without its CSRF token, or from another site", async () => {
    const { cookie, csrf } = await login(TOKEN);
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const cases: [string, Record<string, string>][] = [
      ["no token", { cookie }],
      ["a wrong token", { cookie, "x-csrf-token": "x".repeat(43) }],
      ["another origin", { cookie, "x-csrf-token": csrf, origin: "http://evil.example" }],
      ["a null origin", { cookie, "x-csrf-token": csrf, origin: "null" }],
      ["a cross-site fetch", { cookie, "x-csrf-token": csrf, "sec-fetch-site": "cross-site" }],
    ];
    for (const [what, headers] of cases) {
      const r = await post("/reapply", headers);
      expect(r.statusCode, what).toBe(403);
      expect(r.json().error.code, what).toBe("NETPOL_E_FORBIDDEN");
    }
    // The same session, from its own page: it goes through (nothing awaits confirmation).
    const ok = await post("/confirm", {
      cookie,
      "x-csrf-token": csrf,
      origin: "http://localhost:80",
      "sec-fetch-site": "same-origin",
    });
    expect(ok.json().error.code).toBe("NETPOL_E_NO_CONFIRM_PENDING");
    // A form post without script carries the token in its body.
    const form = await post("/confirm", { cookie, ...FORM }, `csrf=${csrf}`);
    expect(form.json().error.code).toBe("NETPOL_E_NO_CONFIRM_PENDING");
  });

  it("lets the session confirm, revert and re-apply, and nothing else", async () => {
    const { cookie, csrf } = await login(TOKEN);
    const headers = { cookie, "x-csrf-token": csrf };
    expect(
      (await post("/apply", { ...headers, "content-type": "application/yaml" }, VLAN_EGRESS_POLICY))
        .statusCode,
    ).toBe(403);

    const changed = VLAN_EGRESS_POLICY.replace("address: 192.168.6.1", "address: 192.168.6.2");
    expect((await apply("?confirm=600", changed)).statusCode).toBe(200);
    let page = await app.inject({ url: "/", headers: { cookie } });
    expect(page.body).toContain("An apply awaits confirmation");
    const confirmed = await post("/confirm", headers);
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    const kept = (
      await app.inject({ url: "/status", headers: { authorization: `Bearer ${TOKEN}` } })
    ).json();
    expect(kept.pendingConfirm).toBeNull();
    expect(await addresses()).toEqual(["192.168.6.2"]);

    const before = kept.policy.hash;
    expect((await apply("?confirm=600", VLAN_EGRESS_POLICY)).statusCode).toBe(200);
    expect(await addresses()).toEqual(["192.168.6.1"]);
    const reverted = await post("/revert", headers);
    expect(reverted.statusCode, reverted.body).toBe(200);
    const back = (
      await app.inject({ url: "/status", headers: { authorization: `Bearer ${TOKEN}` } })
    ).json();
    expect(back.pendingConfirm).toBeNull();
    expect(back.policy.hash).toBe(before);
    expect(await addresses()).toEqual(["192.168.6.2"]);

    const again = await post("/reapply", headers);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().policy.hash).toBe(before);
    page = await app.inject({ url: "/", headers: { cookie } });
    expect(page.body).toContain("was reverted from");
    expect(page.body).toMatch(/applied by dashboard /);
  });

  it("gives the viewer token the page and every GET, and no change", async () => {
    const bearer = { authorization: `Bearer ${VIEWER}` };
    expect((await app.inject({ url: "/status", headers: bearer })).statusCode).toBe(200);
    const refused = await apply("").then(() =>
      app.inject({ method: "POST", url: "/reapply", headers: bearer }),
    );
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe("NETPOL_E_FORBIDDEN");
    const { r, cookie, csrf, page } = await login(VIEWER);
    expect(r.statusCode).toBe(303);
    expect(page.statusCode).toBe(200);
    expect(page.body).not.toContain('action="/reapply"');
    expect(page.body).toContain("Read-only");
    const viaPage = await post("/reapply", { cookie, "x-csrf-token": csrf });
    expect(viaPage.statusCode).toBe(403);
  });

  it("ends the session at logout", async () => {
    const { cookie, csrf } = await login(TOKEN);
    const out = await post("/logout", { cookie, "x-csrf-token": csrf });
    expect(out.statusCode).toBe(303);
    expect(String(out.headers["set-cookie"])).toContain("Max-Age=0");
    expect((await app.inject({ url: "/", headers: { cookie } })).statusCode).toBe(401);
  });

  it("streams the page's regions to a session, over loopback", async () => {
    const { cookie } = await login(TOKEN);
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    const refused = await fetch(`${base}/events`);
    expect(refused.status).toBe(401);
    const stop = new AbortController();
    const r = await fetch(`${base}/events`, { headers: { cookie }, signal: stop.signal });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const reader = r.body?.getReader();
    let text = "";
    while (reader && !text.includes("event: regions\ndata: ")) {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
    }
    const data = JSON.parse(/event: regions\ndata: (.*)\n/.exec(text)?.[1] ?? "{}");
    expect(Object.keys(data.regions)).toEqual([
      "pending",
      "topology",
      "summary",
      "events",
      "plots",
      "sites",
    ]);
    expect(data.regions.sites).toContain('data-item="home/egress/out"');
    stop.abort();
  });
});
