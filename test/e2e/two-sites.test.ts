import { writeFile } from "node:fs/promises";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { planSite } from "../../src/apply/site/plan-site.js";
import type { Lab } from "../../src/lab/lab.js";
import { labPolicy } from "../../src/lab/policy.js";
import { eventually, httpGet } from "../../src/lab/probe.js";
import { ADDR } from "../../src/lab/topology.js";
import { parsePolicy } from "../../src/policy/load.js";
import { labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";

const CONTROL = "http://10.99.0.1:9470";

// Both sites from one command: home applies the VPS first through the VPS's `netpol serve`,
// reached over the tunnel, then itself. Each netpol runs inside its site's namespace, as it
// would on the machine itself.
describeLive("apply --all: the VPS through its serve over the tunnel, then home", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let server: ResultPromise | undefined;
  const state = () => path.join(lab.dir, "state");
  const policyWith = (edit: (t: string) => string) =>
    edit(labPolicy(lab.names, lab.keys)).replace(
      "  vps:\n    wan: wan\n",
      `  vps:\n    wan: wan\n    control: { url: "${CONTROL}", tokenFile: vps.token }\n`,
    );
  const applyAll = async (text: string) => {
    const file = path.join(lab.dir, "policy-all.yaml");
    await writeFile(file, text, { mode: 0o600 });
    const home = lab.names.ns("home");
    return execa(
      "ip",
      [
        ...["netns", "exec", home, process.execPath, "bin/netpol.js", "apply", file],
        ...["--site", "home", "--all", "--netns", home, "--state-dir", state()],
      ],
      { reject: false },
    );
  };

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    // Bootstrap: the VPS is applied where it is, before any tunnel exists; then home.
    await applySite(siteTarget(lab, "vps"), labInput(lab, "vps"), "test");
    await applySite(siteTarget(lab, "home"), labInput(lab, "home"), "test");
    await writeFile(path.join(lab.dir, "vps.token"), "t0ken-for-the-lab-vps-0123456789\n", {
      mode: 0o600,
    });
    const vps = lab.names.ns("vps");
    server = execa(
      "ip",
      [
        ...["netns", "exec", vps, process.execPath, "bin/netpol.js", "serve"],
        ...["--token-file", path.join(lab.dir, "vps.token"), "--listen", "10.99.0.1:9470"],
        ...["--site", "vps", "--netns", vps, "--state-dir", state(), "--key-dir", lab.dir],
      ],
      { reject: false },
    );
    const up = await eventually(
      () => httpGet(lab.names.ns("home"), `${CONTROL}/healthz`),
      (r) => r.ok,
      15_000,
    );
    expect(up.ok, up.text).toBe(true);
  });
  afterAll(async () => {
    server?.kill("SIGTERM");
    await server;
    await down?.();
  });

  it("publishes a new service at the VPS and keeps the home in step, in one command", async () => {
    const text = policyWith(
      (t) =>
        `${t}  - { name: web3, kind: tcp, publishOn: vps, port: 2224, target: "${ADDR.lan1Host}:8080", clientAddress: preserve }\n`,
    );
    const r = await applyAll(text);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(r.stdout).toContain("plan for site vps (remote)");
    expect(r.stdout).toContain("applied and verified at site vps");
    const answer = await eventually(
      () => httpGet(lab.names.ns("www"), `http://${ADDR.vps}:2224/`),
      (x) => x.ok,
    );
    expect(answer).toEqual({ ok: true, text: ADDR.www });
    // Both sites now hold this policy, and neither has anything left to do.
    const loaded = parsePolicy(text, "policy-all.yaml");
    for (const site of ["vps", "home"] as const) {
      const { plan, record } = await planSite(siteTarget(lab, site), {
        ...loaded,
        keyDir: lab.dir,
        site,
      });
      expect(plan.changes).toEqual([]);
      expect(record?.policyHash).toBe(loaded.hash);
    }
  });

  it("leaves the home untouched when the VPS refuses, naming the VPS and why", async () => {
    // The user's own Caddy site already serves wiki.example.org: the VPS refuses to take it.
    const admin = (...args: string[]) =>
      execa("ip", ["netns", "exec", lab.names.ns("vps"), "curl", "-sS", "-f", ...args]);
    await admin(
      "-X",
      "POST",
      "-H",
      "Content-Type: application/json",
      "-d",
      '{"match":[{"host":["wiki.example.org"]}],"handle":[{"handler":"static_response","body":"mine"}]}',
      "http://localhost:2019/config/apps/http/servers/mine/routes",
    );
    const before = await planSite(siteTarget(lab, "home"), labInput(lab, "home"));
    const text = policyWith(
      (t) =>
        `${t.replace("keepalive: 5", "keepalive: 9")}  - { name: wiki, kind: http, publishOn: vps, hostname: wiki.example.org, target: "${ADDR.lan1Host}:8080" }\n`,
    );
    const r = await applyAll(text);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`site vps (${CONTROL})`);
    expect(r.stderr).toContain("NETPOL_E_FOREIGN_STATE");
    expect(r.stderr).toContain("already routes wiki.example.org");
    expect(r.stderr).toContain("site home was not applied");
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const after = await planSite(siteTarget(lab, "home"), labInput(lab, "home"));
    expect(after.record).toEqual(before.record);
    const wanted = parsePolicy(text, "policy-all.yaml");
    const pending = await planSite(siteTarget(lab, "home"), {
      ...wanted,
      keyDir: lab.dir,
      site: "home",
    });
    expect(pending.plan.changes).toEqual([expect.objectContaining({ kind: "wireguard" })]);
  });
});
