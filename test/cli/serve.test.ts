import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../../src/lab/probe.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { smallSite } from "../support/small-site.js";

const TOKEN = "cli-serve-token-0123456789";
const netpol = (args: string[]) =>
  execa(process.execPath, ["bin/netpol.js", ...args], { reject: false });

describeLive("netpol serve and netpol status --remote", () => {
  let ns: Netns;
  let dir: string;
  let server: ResultPromise | undefined;
  const port = 20000 + (process.pid % 20000);

  beforeAll(async () => {
    ns = await createNetns("npserve");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-serve-"));
    await writeFile(path.join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 });
  });
  afterAll(async () => {
    server?.kill("SIGTERM");
    await server?.catch(() => undefined);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("refuses a token file others can read", async () => {
    const loose = path.join(dir, "loose");
    await writeFile(loose, TOKEN);
    await chmod(loose, 0o644);
    const r = await netpol(["serve", "--token-file", loose, "--listen", `127.0.0.1:${port}`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("chmod 600");
    expect(r.stderr).not.toContain("    at ");
  });

  it("serves status to `netpol status --remote`, and never logs the token", async () => {
    server = execa(
      process.execPath,
      [
        "bin/netpol.js",
        "serve",
        "--token-file",
        path.join(dir, "token"),
        "--listen",
        `127.0.0.1:${port}`,
        "--netns",
        ns.name,
        "--state-dir",
        dir,
        // Every request logged, the polled routes too: the token must not be in any line.
        "--access-log",
      ],
      { reject: false },
    );
    const up = await eventually(
      () =>
        fetch(`http://127.0.0.1:${port}/healthz`).then(
          (r) => r.ok,
          () => false,
        ),
      Boolean,
    );
    expect(up).toBe(true);
    const remote = await netpol([
      "status",
      "--remote",
      `http://127.0.0.1:${port}`,
      "--token-file",
      path.join(dir, "token"),
      "--json",
    ]);
    expect(remote.exitCode, remote.stderr).toBe(0);
    expect(JSON.parse(remote.stdout)).toMatchObject({ scope: `netns-${ns.name}`, policy: null });
    const human = await netpol([
      "status",
      "--remote",
      `http://127.0.0.1:${port}`,
      "--token-file",
      path.join(dir, "token"),
    ]);
    expect(human.stdout).toContain("no policy applied");
    // The version, in the status document and as Prometheus' usual build-info gauge.
    const { version } = JSON.parse(await readFile("package.json", "utf8")) as { version: string };
    expect(JSON.parse(remote.stdout)).toMatchObject({ version });
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(await metrics.text()).toContain(`netpol_build_info{version="${version}"} 1`);

    // `netpol push`: checked here, planned and applied there, through the same endpoint.
    const policy = path.join(dir, "push.yaml");
    await smallSite(ns, policy);
    const push = (...extra: string[]) =>
      netpol([
        "push",
        policy,
        "--site",
        "vps",
        "--remote",
        `http://127.0.0.1:${port}`,
        "--token-file",
        path.join(dir, "token"),
        ...extra,
      ]);
    const dry = await push("--dry-run");
    expect(dry.exitCode, dry.stderr).toBe(2);
    expect(dry.stdout).toContain("+ address 10.9.0.1/24 dev lan0");
    // Printed as `netpol plan` prints a plan, then what became of it there.
    expect(dry.stdout).toMatch(
      /to add, \d+ to change, \d+ to remove\n {2}not applied \(--dry-run\)$/,
    );
    expect((await ns.exec(["ip", "-o", "addr", "show", "lan0"])).stdout).not.toContain("10.9.0.1");
    const applied = await push("--json");
    expect(applied.exitCode, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({ changed: true });
    expect((await ns.exec(["ip", "-o", "addr", "show", "lan0"])).stdout).toContain("10.9.0.1/24");
    // The site's resident runs in serve: a second one (watch, from another state directory too)
    // is refused, naming it, and the site is left as it is.
    for (const stateDir of [dir, path.join(dir, "other")]) {
      const second = await netpol([
        ...["watch", "--in-force", "--netns", ns.name, "--state-dir", stateDir],
        ...["--key-dir", dir],
      ]);
      expect(second.exitCode).toBe(1);
      expect(second.stderr).toContain(
        `netpol watch not started: the resident process of namespace ${ns.name} is already running, \`netpol serve\` (pid ${server.pid},`,
      );
      expect(second.stderr).toContain("systemctl stop netpol-serve.service");
      expect(second.stderr).not.toContain("    at ");
    }
    await writeFile(policy, "version: 1\nsites:\n  vps:\n    wan: eth9\n");
    const refused = await push();
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`${policy}:4:`);
    server.kill("SIGTERM");
    const done = await server;
    expect(String(done.stdout)).toContain('"url":"/status"');
    expect(String(done.stdout) + String(done.stderr)).not.toContain(TOKEN);
  });
});
