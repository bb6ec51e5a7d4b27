import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually, httpGet } from "../../src/lab/probe.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";

const TOKEN = "control-netns-token-0123456789";
const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

// Every request netpol makes for a target leaves from the target's namespace. The site's
// `netpol serve` listens on 127.0.0.1 inside a namespace that has nothing but lo (no route
// out): only a request made from inside it can reach it. The same address in the CLI's own
// namespace answers nothing (a port picked at random), so a request sent from there fails,
// and never leaves the machine.
describeLive("requests to another site's serve leave from --netns", () => {
  let ns: Netns;
  let dir: string;
  let server: ResultPromise | undefined;
  const port = 20000 + Math.floor(Math.random() * 30000);
  const url = `http://127.0.0.1:${port}`;
  const inNs = (args: string[]) => [...args, "--netns", ns.name];

  beforeAll(async () => {
    ns = await createNetns("npctl");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-control-"));
    await writeFile(path.join(dir, "vps.token"), `${TOKEN}\n`, { mode: 0o600 });
    server = execa(
      "ip",
      [
        ...["netns", "exec", ns.name, process.execPath, "bin/netpol.js", "serve"],
        ...["--token-file", path.join(dir, "vps.token"), "--listen", `127.0.0.1:${port}`],
        ...["--site", "vps", "--state-dir", path.join(dir, "served"), "--key-dir", dir],
      ],
      { reject: false },
    );
    const up = await eventually(
      () => httpGet(ns.name, `${url}/healthz`),
      (r) => r.ok,
    );
    expect(up.ok).toBe(true);
    // Nothing of the policy needs a device: site home plans and applies in a bare namespace.
    await writeFile(
      path.join(dir, "policy.yaml"),
      `version: 1\nsites:\n  home: {}\n  vps:\n    control: { url: "${url}", tokenFile: vps.token }\n`,
    );
  });
  afterAll(async () => {
    server?.kill("SIGTERM");
    await server?.catch(() => undefined);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the root namespace cannot reach that serve: the test would catch a request sent from there", async () => {
    const r = await netpol([
      ...["status", "--remote", url, "--token-file", path.join(dir, "vps.token")],
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("ECONNREFUSED");
  });

  it("status --remote asks from --netns", async () => {
    const r = await netpol(
      inNs(["status", "--remote", url, "--token-file", path.join(dir, "vps.token"), "--json"]),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ scope: "host", policy: null });
  });

  it("push asks from --netns", async () => {
    const r = await netpol(
      inNs([
        ...["push", path.join(dir, "policy.yaml"), "--site", "vps", "--remote", url],
        ...["--token-file", path.join(dir, "vps.token"), "--dry-run", "--json"],
      ]),
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dryRun: true, plan: { site: "vps" } });
  });

  it("plan --all, apply --all and status --all ask from --netns", async () => {
    const state = ["--state-dir", path.join(dir, "state")];
    const site = [path.join(dir, "policy.yaml"), "--site", "home", "--all", ...state];
    const plan = await netpol(inNs(["plan", ...site, "--json"]));
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(JSON.parse(plan.stdout).sites.map((s: { site: string }) => s.site)).toEqual([
      "vps",
      "home",
    ]);
    const apply = await netpol(inNs(["apply", ...site, "--json"]));
    expect(apply.exitCode, apply.stderr).toBe(0);
    expect(JSON.parse(apply.stdout).remote).toEqual([expect.objectContaining({ site: "vps" })]);
    const status = await netpol(inNs(["status", "--all", "--key-dir", dir, ...state, "--json"]));
    expect(status.exitCode, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).sites.map((s: { site: string }) => s.site)).toEqual([
      "vps",
      "home",
    ]);
  });

  it("confirm --all keeps what waits and says where nothing did, instead of failing", async () => {
    const state = ["--state-dir", path.join(dir, "state")];
    // A change here only: home gets an address on its lo, armed with --confirm; the VPS gets
    // nothing to confirm.
    const file = path.join(dir, "policy-confirm.yaml");
    await writeFile(
      file,
      `version: 1\nsites:\n  home:\n    interfaces: [{ name: lo, kind: physical }]\n    networks: [{ name: n, cidr: 10.8.0.0/24, interface: lo, address: 10.8.0.1 }]\n  vps:\n    control: { url: "${url}", tokenFile: vps.token }\n`,
    );
    const armed = await netpol(
      inNs(["apply", file, "--site", "home", "--confirm", "60", ...state]),
    );
    expect(armed.exitCode, armed.stderr).toBe(0);
    const confirmed = await netpol(
      inNs(["confirm", file, "--site", "home", "--all", ...state, "--json"]),
    );
    expect(confirmed.exitCode, confirmed.stderr).toBe(0);
    expect(JSON.parse(confirmed.stdout).sites).toEqual([
      { site: "vps", confirmed: false },
      { site: "home", confirmed: true },
    ]);
    const again = await netpol(inNs(["confirm", file, "--site", "home", "--all", ...state]));
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toContain("no apply is waiting for confirmation at any site (vps, home)");
  });

  it("says another site's failure with both codes: this side's first, the site's own after", async () => {
    // Valid here; there the key file it names is missing.
    const file = path.join(dir, "policy-nokey.yaml");
    await writeFile(
      file,
      `version: 1\nsites:\n  vps: {}\n  far: {}\ntunnels:\n  - name: t9\n    members:\n      - { site: vps, address: 10.96.0.1/24, endpoint: 192.0.2.9:51820, publicKey: ${generateKeyPair().publicKey}, privateKeyFile: missing.key }\n      - { site: far, address: 10.96.0.2/24, publicKey: ${generateKeyPair().publicKey}, privateKeyFile: far.key }\n`,
    );
    const push = (...extra: string[]) =>
      netpol(
        inNs([
          ...["push", file, "--site", "vps", "--remote", url],
          ...["--token-file", path.join(dir, "vps.token"), ...extra],
        ]),
      );
    const human = await push();
    expect(human.exitCode).toBe(1);
    expect(human.stderr).toMatch(
      /^netpol: NETPOL_E_REMOTE_FAILED: site vps \(http:\/\/127\.0\.0\.1:\d+\): NETPOL_E_KEY_FILE: key file \S+missing\.key does not exist/,
    );
    const json = await push("--json");
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout).error).toMatchObject({
      code: "NETPOL_E_REMOTE_FAILED",
      details: { remoteCode: "NETPOL_E_KEY_FILE" },
    });
  });
});
