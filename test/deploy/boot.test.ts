import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa, type ResultPromise } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { eventually, httpGet } from "../../src/lab/probe.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";

const TOKEN = "boot-path-token-0123456789abcdef";
const SITE = "vps";

const policy = (networks: string[]) =>
  `version: 1\nsites:\n  ${SITE}:\n    interfaces: [{ name: lan0, kind: physical }]\n    networks:\n${networks.map((n) => `      - ${n}\n`).join("")}`;
/** What the operator wrote to /etc/netpol/policy.yaml and applied by hand. */
const FIRST = policy(["{ name: n, cidr: 10.9.0.0/24, interface: lan0, address: 10.9.0.1 }"]);
/** What was pushed later, over the tunnel: it is never written to /etc/netpol/policy.yaml. */
const PUSHED = policy([
  "{ name: n, cidr: 10.9.0.0/24, interface: lan0, address: 10.9.0.1 }",
  "{ name: n2, cidr: 10.9.1.0/24, interface: lan0, address: 10.9.1.1 }",
]);

/**
 * The boot step after a push, as the units run it. The machine is a namespace, and the
 * commands run inside it with no --netns, as the units do on a machine (the `host` scope);
 * /etc/netpol and /var/lib/netpol are a test directory each. A reboot is the namespace
 * deleted and made again with the same physical device: the kernel's state is gone, the
 * state directory is kept.
 */
describeLive("the boot path after a push: the units' command lines, by hand", () => {
  let ns: Netns;
  let dir: string;
  let serve: ResultPromise | undefined;
  const port = 20000 + Math.floor(Math.random() * 30000);
  const etc = () => path.join(dir, "etc");
  const state = () => path.join(dir, "state");

  /** A unit's line (ExecStart=, ConditionPathExists=) with this test's paths and environment. */
  function unitLine(unit: string, key: string): string {
    const text = readFileSync(path.join("deploy/systemd", unit), "utf8");
    const line = text.split("\n").find((l) => l.startsWith(`${key}=`));
    if (!line) throw new Error(`${unit} has no ${key}=`);
    const env: Record<string, string> = { NETPOL_SITE: SITE, NETPOL_LISTEN: `127.0.0.1:${port}` };
    return line
      .slice(key.length + 1)
      .replace(/\$\{(\w+)\}/g, (_, name: string) => env[name] ?? "")
      .replaceAll("/var/lib/netpol", state())
      .replaceAll("/etc/netpol", etc());
  }

  /** A unit's ExecStart, run inside the machine, the state directory given as its own. */
  function runUnit(unit: string): ResultPromise {
    const [binary, ...args] = unitLine(unit, "ExecStart").split(" ");
    expect(binary).toBe("/usr/local/bin/netpol");
    return execa(
      "ip",
      [
        ...["netns", "exec", ns.name, process.execPath, "bin/netpol.js", ...args],
        ...["--state-dir", state()],
      ],
      { reject: false },
    );
  }

  async function machine(): Promise<Netns> {
    const made = await createNetns("npboot");
    await made.exec(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
    await made.exec(["ip", "link", "set", "lan0", "up"]);
    return made;
  }

  const addresses = async () => (await ns.exec(["ip", "-o", "addr", "show", "lan0"])).stdout;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-boot-"));
    await execa("mkdir", ["-m", "700", etc(), state()]);
    await writeFile(path.join(etc(), "token"), `${TOKEN}\n`, { mode: 0o600 });
    await writeFile(path.join(etc(), "policy.yaml"), FIRST);
    await writeFile(path.join(dir, "pushed.yaml"), PUSHED);
    ns = await machine();
  });
  afterAll(async () => {
    serve?.kill("SIGTERM");
    await serve?.catch(() => undefined);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("brings back, and keeps, the policy that was pushed, not the file", async () => {
    // The first apply, by hand (docs/deploy.md, step 3), from /etc/netpol/policy.yaml.
    const first = await execa(
      "ip",
      [
        ...["netns", "exec", ns.name, process.execPath, "bin/netpol.js", "apply"],
        ...[path.join(etc(), "policy.yaml"), "--site", SITE, "--state-dir", state()],
      ],
      { reject: false },
    );
    expect(first.exitCode, first.stderr).toBe(0);
    // netpol-serve as its unit runs it; then a push from "home" reaches it.
    serve = runUnit("netpol-serve.service");
    const up = await eventually(
      () => httpGet(ns.name, `http://127.0.0.1:${port}/healthz`),
      (r) => r.ok,
    );
    expect(up.ok).toBe(true);
    const pushed = await execa(
      process.execPath,
      [
        ...["bin/netpol.js", "push", path.join(dir, "pushed.yaml"), "--site", SITE],
        ...["--remote", `http://127.0.0.1:${port}`, "--token-file", path.join(etc(), "token")],
        ...["--netns", ns.name],
      ],
      { reject: false },
    );
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(await addresses()).toContain("10.9.1.1/24");
    serve.kill("SIGTERM");
    await serve;
    serve = undefined;

    // Reboot: the kernel's state is gone, the state directory is not.
    await ns.destroy();
    ns = await machine();
    expect(await addresses()).not.toContain("10.9.0.1/24");
    for (const unit of ["netpol-apply.service", "netpol-watch.service"])
      expect(existsSync(unitLine(unit, "ConditionPathExists")), unit).toBe(true);

    const boot = await runUnit("netpol-apply.service");
    expect(boot.exitCode, String(boot.stderr)).toBe(0);
    expect(await addresses()).toContain("10.9.1.1/24");

    // netpol-watch starts from the policy in force too, and keeps it.
    const watch = runUnit("netpol-watch.service");
    let said = "";
    watch.stdout?.on("data", (d: Buffer) => {
      said += d.toString();
    });
    try {
      await eventually(
        async () => said,
        (text) => text.includes("watching links"),
        20_000,
      );
      expect(said).toContain("watching links");
      // Its first round applied what is in force: nothing to change, nothing taken back.
      expect(said).not.toContain("applied");
      expect(await addresses()).toContain("10.9.1.1/24");
    } finally {
      watch.kill("SIGTERM");
    }
    expect(String((await watch).stderr)).toBe("");

    // What is in force, printed: what was pushed, byte for byte.
    const shown = await execa(
      "ip",
      [
        ...["netns", "exec", ns.name, process.execPath, "bin/netpol.js", "show-policy"],
        ...["--state-dir", state()],
      ],
      { reject: false, stripFinalNewline: false },
    );
    expect(shown.exitCode, String(shown.stderr)).toBe(0);
    expect(shown.stdout).toBe(PUSHED);
  });
});
