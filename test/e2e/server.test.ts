import { execa } from "execa";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { labPolicy } from "../../src/lab/policy.js";
import { eventually } from "../../src/lab/probe.js";
import { buildApp } from "../../src/server/app.js";
import type { SiteStatus } from "../../src/status/collect.js";
import { deleteFailClosedRoute, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { liveNode } from "../support/node.js";

const TOKEN = "lab-token-0123456789abcdef";

// A real `netpol serve` app on loopback for the home site of a lab with real WireGuard.
describeLive("the server against a live lab", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let app: FastifyInstance;
  let base: string;

  const call = async (route: string, init: RequestInit = {}) => {
    const r = await fetch(`${base}${route}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, ...init.headers },
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const status = async () => (await call("/status")).body as unknown as SiteStatus;
  const apply = (text: string) =>
    call("/apply", { method: "POST", body: text, headers: { "content-type": "application/yaml" } });

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    app = await buildApp({
      target: siteTarget(lab, "home"),
      token: TOKEN,
      keyDir: lab.dir,
      site: "home",
      statusMaxAgeMs: 0,
    });
    base = await app.listen({ host: "127.0.0.1", port: 0 });
  });
  afterAll(async () => {
    await app?.close();
    await down?.();
  });

  it("shows a handshake as never, then seconds old once the VPS is up and traffic flows", async () => {
    expect((await apply(labPolicy(lab.names, lab.keys))).status).toBe(200);
    const before = await status();
    const peer = before.tunnels.find((t) => t.interface === lab.names.wgHome)?.peers[0];
    expect(peer).toMatchObject({ site: "vps", latestHandshake: null, handshakeAgeSeconds: null });

    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    await execa(
      "ip",
      [
        "netns",
        "exec",
        lab.names.ns("home"),
        "ping",
        "-c",
        "3",
        "-i",
        "0.3",
        "-W",
        "1",
        "10.99.0.1",
      ],
      { reject: false },
    );
    const after = await eventually(
      status,
      (s) => (s.tunnels[0]?.peers[0]?.handshakeAgeSeconds ?? null) !== null,
    );
    const fresh = after.tunnels.find((t) => t.interface === lab.names.wgHome)?.peers[0];
    expect(fresh?.handshakeAgeSeconds).toBeLessThan(30);
    expect(fresh?.rxBytes).toBeGreaterThan(0);
  });

  it("reports drift when an owned route is deleted by hand, and none after POST /apply", async () => {
    expect((await status()).drift?.inSync).toBe(true);
    await deleteFailClosedRoute(liveNode(lab.names.ns("home")));
    const drifted = await status();
    expect(drifted.drift?.inSync).toBe(false);
    expect(drifted.drift?.changes).toEqual([
      expect.objectContaining({
        op: "add",
        kind: "route",
        what: expect.stringContaining("unreachable 0.0.0.0/0"),
      }),
    ]);
    expect((await apply(labPolicy(lab.names, lab.keys))).status).toBe(200);
    expect((await status()).drift?.inSync).toBe(true);
  });

  it("lets one of two concurrent applies through and answers the other 409, leaving the state intact", async () => {
    const changed = labPolicy(lab.names, lab.keys).replace("table: 3", "table: 9");
    const [a, b] = await Promise.all([apply(changed), apply(changed)]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const refused = a.status === 409 ? a : b;
    expect(refused.body).toEqual({
      error: { code: "NETPOL_E_LOCKED", message: expect.stringContaining("another apply") },
    });
    expect((await status()).drift?.inSync).toBe(true);
    expect((await call("/plan")).body).toMatchObject({ inSync: true });
  });

  it("says whether each published service's target answers", async () => {
    const vps = await buildApp({
      target: siteTarget(lab, "vps"),
      token: TOKEN,
      keyDir: lab.dir,
      statusMaxAgeMs: 0,
    });
    try {
      const r = await vps.inject({ url: "/status", headers: { authorization: `Bearer ${TOKEN}` } });
      const services = (r.json() as SiteStatus).services;
      expect(services.find((s) => s.name === "web")).toMatchObject({
        reachable: true,
        how: "tcp connect through the tunnel",
      });
      expect(services.find((s) => s.name === "blog")).toMatchObject({
        listen: "http blog.example.org",
        reachable: true,
        proxy: { routed: true, upstreamFails: 0 },
      });
      const metrics = await vps.inject({
        url: "/metrics",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(metrics.body).toContain('netpol_proxy_route_present{service="blog"} 1');
      expect(metrics.body).toContain('netpol_service_target_reachable{service="blog"} 1');
    } finally {
      await vps.close();
    }
  });
});
