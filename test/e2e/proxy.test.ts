import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import { NetpolError } from "../../src/errors.js";
import { OWN_SITE } from "../../src/lab/caddy.js";
import { type Lab, restartCaddy } from "../../src/lab/lab.js";
import { labPolicy } from "../../src/lab/policy.js";
import {
  addCounter,
  counterPackets,
  eventually,
  httpGetHost,
  requestLoop,
} from "../../src/lab/probe.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { collectStatus } from "../../src/status/collect.js";
import { withRun } from "../../src/system/runner.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

// The VPS's reverse proxy on real namespaces: a real Caddy, started by the lab in the VPS
// namespace with a site of the user's own on :80, reconciled through its admin API.
describeLive("HTTP services published by hostname through the VPS's Caddy", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let original: string;

  const vps = () => lab.names.ns("vps");
  const admin = (path: string) =>
    httpGetHost(vps(), `http://localhost:2019${path}`, "localhost:2019");
  const ask = (host: string) => httpGetHost(lab.names.ns("www"), `http://${ADDR.vps}/`, host);
  const HOME_PAGE = `10.99.0.1 for ${ADDR.www}`;
  const withWiki =
    (target = `${ADDR.lan1Host}:${WHOAMI_PORT}`) =>
    (t: string) =>
      `${t}  - { name: wiki, kind: http, publishOn: vps, hostname: wiki.example.org, target: "${target}" }\n`;
  const withoutHttp = (t: string) =>
    t
      .split("\n")
      .filter((l) => !l.includes("kind: http"))
      .join("\n");

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    original = (await admin("/config/")).text;
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
  });
  afterAll(async () => {
    await down?.();
  });

  it("carries a published hostname to the home server, which learns the client from X-Forwarded-For", async () => {
    const r = await eventually(
      () => ask("blog.example.org"),
      (x) => x.ok,
    );
    expect(r).toEqual({ ok: true, text: HOME_PAGE });
  });

  it("keeps the user's own site on the same port answering, and sends other hosts nowhere near the home", async () => {
    expect(await ask(OWN_SITE.host)).toEqual({ ok: true, text: OWN_SITE.body });
    await addCounter(
      lab.names.ns("home"),
      "tohome",
      `ip daddr ${ADDR.lan1Host} tcp dport ${WHOAMI_PORT}`,
    );
    const stranger = await httpGetHost(
      lab.names.ns("www"),
      `http://${ADDR.vps}/`,
      "evil.example.net",
    );
    expect(stranger.text).toBe("");
    expect(await counterPackets(lab.names.ns("home"), "tohome")).toBe(0);
    // The user's server holds netpol's route first and its own route unchanged after it.
    const routes = JSON.parse((await admin("/config/apps/http/servers/mine/routes")).text);
    expect(routes.map((r: { "@id"?: string }) => r["@id"] ?? "user")).toEqual([
      "netpol-blog",
      "user",
    ]);
  });

  it("adds, changes and removes a second service without one failed request to the first", async () => {
    const loop = requestLoop(lab.names.ns("www"), `http://${ADDR.vps}/`, "blog.example.org", 50);
    const vpsTarget = siteTarget(lab, "vps");
    try {
      await new Promise((r) => setTimeout(r, 300));
      const added = await applySite(vpsTarget, labInput(lab, "vps", withWiki()), "test");
      expect(added.plan.changes).toEqual([
        expect.objectContaining({ kind: "proxy", op: "add", service: "wiki" }),
      ]);
      expect(await ask("wiki.example.org")).toEqual({ ok: true, text: HOME_PAGE });
      await new Promise((r) => setTimeout(r, 300));
      const changed = await applySite(
        vpsTarget,
        labInput(lab, "vps", withWiki(`${ADDR.lan1Host}:9`)),
        "test",
      );
      expect(changed.plan.changes).toEqual([
        expect.objectContaining({ kind: "proxy", op: "set", service: "wiki" }),
      ]);
      expect((await ask("wiki.example.org")).ok).toBe(false);
      await new Promise((r) => setTimeout(r, 300));
      const removed = await applySite(vpsTarget, labInput(lab, "vps"), "test");
      expect(removed.plan.changes).toEqual([
        expect.objectContaining({ kind: "proxy", op: "remove", service: "wiki" }),
      ]);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      const result = await loop.stop();
      expect(result.failed).toEqual([]);
      expect(result.ok).toBeGreaterThan(20);
    }
    // Caddy answers an unrouted Host with an empty 200: the home page is gone.
    expect(await ask("wiki.example.org")).toEqual({ ok: true, text: "" });
  });

  it("fails with Caddy's own words when Caddy refuses the config; the old routes keep serving and the kernel side is rolled back", async () => {
    const real = siteTarget(lab, "vps").runner;
    // A config Caddy refuses, slipped in at the runner: the schema would not let one through.
    const spoiler = withRun(real, (tool, args, options) => {
      // The request goes to the node process that makes it as JSON on stdin.
      const request = tool === process.execPath && JSON.parse(options?.input || "null");
      if (request?.method !== "POST") return real.run(tool, args, options);
      const config = JSON.parse(request.body);
      config.apps.http.servers.clash = { listen: [":80"] };
      const input = JSON.stringify({ ...request, body: JSON.stringify(config) });
      return real.run(tool, args, { ...options, input });
    });
    const withMore = (t: string) =>
      withWiki()(t) +
      '  - { name: extra, kind: tcp, publishOn: vps, port: 2223, target: "192.168.1.10:8080" }\n';
    const err = await applySite(
      siteTarget(lab, "vps", spoiler),
      labInput(lab, "vps", withMore),
      "test",
    ).catch((e) => e);
    expect(err).toBeInstanceOf(NetpolError);
    expect(err.code).toBe("NETPOL_E_APPLY_FAILED");
    expect(err.message).toMatch(/listener address repeated/);
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: HOME_PAGE });
    const after = await planSite(siteTarget(lab, "vps"), labInput(lab, "vps"));
    expect(after.plan.changes).toEqual([]);
  });

  it("reports the routes lost by a Caddy restart as drift, and an apply puts them back", async () => {
    await restartCaddy(lab);
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: "" });
    const status = await collectStatus(siteTarget(lab, "vps"), Date.now());
    expect(status.drift?.changes).toEqual([
      expect.objectContaining({
        kind: "proxy",
        op: "add",
        what: expect.stringContaining("netpol-blog"),
      }),
    ]);
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: HOME_PAGE });
    expect(await ask(OWN_SITE.host)).toEqual({ ok: true, text: OWN_SITE.body });
  });

  it("has `netpol watch` put the routes back into a Caddy that restarted empty", async () => {
    const watcher = execa(
      process.execPath,
      [
        "bin/netpol.js",
        "watch",
        `${lab.dir}/policy.yaml`,
        "--site",
        "vps",
        "--netns",
        vps(),
        "--state-dir",
        `${lab.dir}/state`,
        "--interval",
        "1",
      ],
      { reject: false },
    );
    try {
      await restartCaddy(lab);
      expect(await ask("blog.example.org")).toEqual({ ok: true, text: "" });
      const back = await eventually(
        () => ask("blog.example.org"),
        (x) => x.text === HOME_PAGE,
      );
      expect(back).toEqual({ ok: true, text: HOME_PAGE });
    } finally {
      watcher.kill("SIGTERM");
      await watcher;
    }
  });

  it("reverts the proxy routes too when an apply made with --confirm is not confirmed", async () => {
    const file = `${lab.dir}/policy-wiki.yaml`;
    await writeFile(file, withWiki()(labPolicy(lab.names, lab.keys)), { mode: 0o600 });
    const applied = await execa(
      process.execPath,
      [
        ...["bin/netpol.js", "apply", file, "--site", "vps", "--netns", vps()],
        ...["--state-dir", `${lab.dir}/state`, "--confirm", "2"],
      ],
      { reject: false },
    );
    expect(applied.exitCode, String(applied.stderr)).toBe(0);
    expect(await ask("wiki.example.org")).toEqual({ ok: true, text: HOME_PAGE });
    const gone = await eventually(
      () => ask("wiki.example.org"),
      (x) => x.text === "",
      10_000,
    );
    expect(gone).toEqual({ ok: true, text: "" });
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: HOME_PAGE });
    expect(await ask(OWN_SITE.host)).toEqual({ ok: true, text: OWN_SITE.body });
    // Caddy is put back last; the revert then writes the record and lets the lock go.
    const scope = `${lab.dir}/state/netns-${vps()}`;
    const busy = await eventually(
      async () => existsSync(`${scope}.pending.json`) || existsSync(`${scope}.lock`),
      (held) => !held,
    );
    expect(busy).toBe(false);
  });

  it("removes exactly its own routes when the policy publishes no HTTP service: the config is as it was", async () => {
    const r = await applySite(siteTarget(lab, "vps"), labInput(lab, "vps", withoutHttp), "test");
    expect(r.plan.changes).toEqual([
      expect.objectContaining({ kind: "proxy", op: "remove", service: "blog" }),
    ]);
    expect((await admin("/config/")).text).toBe(original);
    expect(await ask(OWN_SITE.host)).toEqual({ ok: true, text: OWN_SITE.body });
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: "" });
  });

  it("`netpol down` takes netpol's routes out of Caddy: the user's site answers and the config is as it was", async () => {
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: HOME_PAGE });
    const taken = await execa(
      process.execPath,
      ["bin/netpol.js", "down", "--netns", vps(), "--state-dir", `${lab.dir}/state`],
      { reject: false },
    );
    expect(taken.exitCode, String(taken.stderr)).toBe(0);
    expect(String(taken.stdout)).toContain("- proxy route netpol-blog");
    expect((await admin("/config/")).text).toBe(original);
    expect(await ask(OWN_SITE.host)).toEqual({ ok: true, text: OWN_SITE.body });
    expect(await ask("blog.example.org")).toEqual({ ok: true, text: "" });
  });
});
