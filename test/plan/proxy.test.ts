import { describe, expect, it } from "vitest";
import type { ProxySpec } from "../../src/compile/desired.js";
import { DEFAULT_PROXY } from "../../src/compile/proxy.js";
import type { CaddyLive } from "../../src/plan/live.js";
import { proxyPlan } from "../../src/plan/proxy.js";
import { LETS_ENCRYPT } from "../../src/policy/schema.js";

// The merge of netpol's routes into a running Caddy config, on configs as found on real VPSes.

const spec = (tls: "auto" | "off", ...services: [string, string][]): ProxySpec => ({
  settings: { ...DEFAULT_PROXY, tls },
  routes: services.map(([service, hostname]) => ({
    service,
    hostname,
    upstream: "192.168.1.20:80",
  })),
});
const live = (config: unknown): CaddyLive => ({ reachable: true, config, etag: '"/config/ 1"' });

/** A Caddyfile-made config: one server on :443 with the user's own site, one on :80. */
const userConfig = {
  admin: { listen: "localhost:2019" },
  apps: {
    http: {
      servers: {
        srv0: {
          listen: [":443"],
          routes: [
            { match: [{ host: ["www.example.net"] }], handle: [{ handler: "file_server" }] },
          ],
        },
        srv1: { listen: [":80"], routes: [{ handle: [{ handler: "static_response" }] }] },
      },
    },
  },
};

interface Server {
  readonly listen: string[];
  readonly routes?: { readonly "@id"?: string }[];
}

const written = (plan: ReturnType<typeof proxyPlan>) =>
  plan.write?.config as { admin: unknown; apps: { http: { servers: Record<string, Server> } } };

describe("proxy routes merged into a running Caddy", () => {
  it("puts them first in the server already on the HTTPS port with tls: auto, leaving the rest as it was", () => {
    const plan = proxyPlan(spec("auto", ["blog", "blog.example.org"]), live(userConfig));
    expect(plan.changes).toEqual([
      {
        kind: "proxy",
        op: "add",
        service: "blog",
        detail: "blog.example.org → 192.168.1.20:80 in server srv0",
      },
      {
        kind: "certificates",
        op: "add",
        detail: `certificates for blog.example.org from ${LETS_ENCRYPT} (events to /var/log/caddy/netpol-acme.log)`,
      },
    ]);
    const servers = written(plan).apps.http.servers;
    expect(servers.srv0?.routes?.map((r) => r["@id"] ?? "user")).toEqual(["netpol-blog", "user"]);
    expect(servers.srv0?.routes?.[1]).toEqual(userConfig.apps.http.servers.srv0.routes[0]);
    expect(servers.srv1).toEqual(userConfig.apps.http.servers.srv1);
    expect(written(plan).admin).toEqual(userConfig.admin);
    expect(plan.write?.previous).toEqual(userConfig);
  });

  it("uses the server on the HTTP port with tls: off", () => {
    const plan = proxyPlan(spec("off", ["blog", "blog.example.org"]), live(userConfig));
    expect(plan.changes[0]).toMatchObject({ detail: expect.stringContaining("in server srv1") });
  });

  it("adds a server of its own where none listens on the port, and an empty Caddy gets its admin address kept", () => {
    const plan = proxyPlan(spec("off", ["blog", "blog.example.org"]), live(null));
    expect(written(plan)).toEqual({
      admin: { listen: "localhost:2019" },
      apps: {
        http: {
          servers: {
            netpol: {
              listen: [":80"],
              routes: [expect.objectContaining({ "@id": "netpol-blog" })],
              automatic_https: { disable: true },
            },
          },
        },
      },
    });
  });

  it("is in sync when the live routes are its own, and removes exactly them when the policy has none", () => {
    const added = written(proxyPlan(spec("auto", ["blog", "blog.example.org"]), live(userConfig)));
    expect(proxyPlan(spec("auto", ["blog", "blog.example.org"]), live(added)).changes).toEqual([]);
    const emptied = proxyPlan(spec("auto"), live(added));
    expect(emptied.changes).toEqual([
      expect.objectContaining({ op: "remove", service: "blog" }),
      expect.objectContaining({ op: "remove", kind: "certificates" }),
    ]);
    expect(emptied.write?.config).toEqual(userConfig);
  });

  it("changes a route whose target moved, and removes its own server once it holds nothing", () => {
    const own = written(proxyPlan(spec("off", ["blog", "blog.example.org"]), live(null)));
    const moved = spec("off", ["blog", "blog.example.org"]);
    const retargeted: ProxySpec = {
      ...moved,
      routes: moved.routes.map((r) => ({ ...r, upstream: "192.168.1.21:80" })),
    };
    expect(proxyPlan(retargeted, live(own)).changes).toEqual([
      expect.objectContaining({ op: "set", detail: expect.stringContaining("192.168.1.21:80") }),
    ]);
    expect(proxyPlan(spec("off"), live(own)).write?.config).toEqual({
      admin: { listen: "localhost:2019" },
    });
  });

  it("refuses to shadow a user's route for the same hostname", () => {
    const plan = proxyPlan(spec("auto", ["www", "WWW.example.net"]), live(userConfig));
    expect(plan.conflicts).toEqual([
      "Caddy server srv0 already routes WWW.example.net with a route netpol did not make; remove it there or publish another hostname",
    ]);
  });

  it("waits, rather than fails, while Caddy's admin API does not answer", () => {
    const plan = proxyPlan(spec("off", ["blog", "blog.example.org"]), {
      reachable: false,
      error: "GET /config/: no answer (ECONNREFUSED)",
    });
    expect(plan.changes).toEqual([]);
    expect(plan.waiting).toEqual([
      "proxy route blog.example.org (Caddy's admin API at localhost:2019 does not answer: GET /config/: no answer (ECONNREFUSED))",
    ]);
  });
});

/** A user's Caddy with its own certificate policy (DNS-01 for its wildcard) and its own log. */
const userTls = {
  ...userConfig,
  logging: { logs: { access: { include: ["http.log.access"] } } },
  apps: {
    ...userConfig.apps,
    tls: {
      automation: {
        policies: [
          { subjects: ["*.example.net"], issuers: [{ module: "acme", challenges: { dns: {} } }] },
        ],
      },
    },
  },
};

const withAcme = (s: ProxySpec, acme: Partial<ProxySpec["settings"]["acme"]>): ProxySpec => ({
  ...s,
  settings: { ...s.settings, acme: { ...s.settings.acme, ...acme } },
});

interface TlsConfig {
  logging: { logs: Record<string, unknown> };
  apps: { tls: { automation: { policies: Record<string, unknown>[] } } };
}
const tlsOf = (plan: ReturnType<typeof proxyPlan>) => plan.write?.config as TlsConfig;

describe("netpol's certificate policy in a running Caddy", () => {
  const pebble = withAcme(
    spec("auto", ["blog", "blog.example.org"], ["wiki", "wiki.example.org"]),
    {
      ca: "https://192.0.2.80:14000/dir",
      email: "ops@example.org",
      trustedRoots: ["/etc/netpol/pebble-ca.pem"],
      log: "/var/log/caddy/acme.log",
    },
  );

  it("asks the policy's CA for exactly its hostnames, by HTTP-01, before the user's own policies, and logs the events", () => {
    const config = tlsOf(proxyPlan(pebble, live(userTls)));
    expect(config.apps.tls.automation.policies).toEqual([
      {
        "@id": "netpol:acme",
        subjects: ["blog.example.org", "wiki.example.org"],
        issuers: [
          {
            module: "acme",
            ca: "https://192.0.2.80:14000/dir",
            email: "ops@example.org",
            trusted_roots_pem_files: ["/etc/netpol/pebble-ca.pem"],
            challenges: { "tls-alpn": { disabled: true } },
          },
        ],
      },
      userTls.apps.tls.automation.policies[0],
    ]);
    expect(config.logging.logs).toEqual({
      access: userTls.logging.logs.access,
      "netpol-acme": {
        writer: {
          output: "file",
          filename: "/var/log/caddy/acme.log",
          roll_size_mb: 1,
          roll_keep: 1,
        },
        encoder: { format: "json" },
        include: ["tls.obtain", "tls.renew", "tls.issuance", "http.acme_client"],
      },
    });
  });

  it("is in sync once written, changes the policy when the CA changes, and takes out exactly what it added", () => {
    const added = tlsOf(proxyPlan(pebble, live(userTls)));
    expect(proxyPlan(pebble, live(added)).changes).toEqual([]);
    const moved = proxyPlan(withAcme(pebble, { ca: LETS_ENCRYPT }), live(added));
    expect(moved.changes).toEqual([
      expect.objectContaining({
        kind: "certificates",
        op: "set",
        detail: expect.stringContaining(LETS_ENCRYPT),
      }),
    ]);
    const emptied = proxyPlan(spec("auto"), live(added));
    expect(emptied.changes.map((c) => `${c.kind} ${c.op}`)).toEqual([
      "proxy remove",
      "proxy remove",
      "certificates remove",
    ]);
    expect(emptied.write?.config).toEqual(userTls);
  });

  it("asks for no certificates with tls: off", () => {
    const plan = proxyPlan(spec("off", ["blog", "blog.example.org"]), live(userTls));
    expect(plan.changes.map((c) => c.kind)).toEqual(["proxy"]);
    expect(plan.write?.config).toMatchObject({
      apps: { tls: userTls.apps.tls },
      logging: userTls.logging,
    });
  });

  it("refuses a hostname the user's own certificate policy already covers", () => {
    const mine = {
      ...userTls,
      apps: {
        ...userTls.apps,
        tls: { automation: { policies: [{ subjects: ["Blog.example.org"] }] } },
      },
    };
    expect(proxyPlan(pebble, live(mine)).conflicts).toEqual([
      "Caddy's TLS automation policy 0 already covers blog.example.org, a hostname netpol publishes; remove it there or publish another hostname",
    ]);
  });
});
