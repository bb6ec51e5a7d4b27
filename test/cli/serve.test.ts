import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually } from "../../src/lab/probe.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";

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
    server.kill("SIGTERM");
    const done = await server;
    expect(String(done.stdout)).toContain('"url":"/status"');
    expect(String(done.stdout) + String(done.stderr)).not.toContain(TOKEN);
  });
});
