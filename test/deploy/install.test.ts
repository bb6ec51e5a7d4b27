import { existsSync, readFileSync, statSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { beforeAllLive, describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { smallSite } from "../support/small-site.js";

/**
 * The release as a user gets it: `npm pack`, installed into an empty prefix with nothing but
 * Node, and deploy/install.sh into a temporary root (DESTDIR): never the machine's own /etc,
 * and nothing applied outside namespaces this test creates.
 */

const root = fileURLToPath(new URL("../../", import.meta.url));
let tmp: string;
let tarball: string;

beforeAllLive(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "netpol-release-"));
  const packed = await execa("npm", ["pack", "--silent", "--pack-destination", tmp], { cwd: root });
  tarball = path.join(tmp, packed.stdout.trim().split("\n").at(-1) ?? "");
}, 240_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

describeLive("npm pack", () => {
  it("ships the bundle, the units and the examples, and no sources or dependencies", async () => {
    const files = (await execa("tar", ["tzf", tarball])).stdout.split("\n");
    expect(files).toContain("package/bin/netpol.js");
    expect(files).toContain("package/lib/main.cjs");
    expect(files).toContain("package/deploy/install.sh");
    expect(files).toContain("package/deploy/systemd/netpol-apply.service");
    expect(files).toContain("package/CHANGELOG.md");
    expect(files).not.toContain("package/deploy/bundle.mjs");
    expect(files.filter((f) => /^package\/(src|test|dist|node_modules)\//.test(f))).toEqual([]);
    const manifest = JSON.parse(
      (await execa("tar", ["xzOf", tarball, "package/package.json"])).stdout,
    ) as { dependencies?: object };
    expect(manifest.dependencies ?? {}).toEqual({});
  });

  it("installs offline into an empty prefix and runs with Node alone: validate, then the demo", async () => {
    const prefix = path.join(tmp, "prefix");
    await execa("npm", ["install", "--global", "--prefix", prefix, "--offline", tarball]);
    const netpol = path.join(prefix, "bin/netpol");
    // Run from an empty directory: nothing of the checkout (node_modules, dist) is in reach.
    const away = { cwd: tmp, reject: false } as const;
    const version = await execa(netpol, ["--version"], away);
    expect(version.stdout).toBe(
      (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string })
        .version,
    );
    const installed = path.join(prefix, "lib/node_modules/netpol");
    const valid = await execa(
      netpol,
      ["validate", path.join(installed, "policies/b-publish-via-vps.yaml")],
      away,
    );
    expect(valid.exitCode, valid.stderr).toBe(0);
    expect(valid.stdout).toMatch(/valid\nsite home/);
    // A duplicate key takes the full YAML reader, loaded only then from its own file in lib/.
    const twice = path.join(tmp, "twice.yaml");
    await writeFile(twice, "version: 1\nversion: 1\n");
    const duplicate = await execa(netpol, ["validate", twice], away);
    expect(duplicate.exitCode).toBe(1);
    expect(duplicate.stderr).toMatch(/twice\.yaml:2:1 YAML: Map keys must be unique/);

    // A lab name of its own: a demo run by hand on this machine is left alone.
    const name = `i${Math.random()
      .toString(36)
      .slice(2, 6)
      .replace(/[^a-z0-9]/g, "x")}`;
    const demo = await execa(netpol, ["demo", "--name", name], away);
    try {
      expect(demo.exitCode, `${demo.stdout}\n${demo.stderr}`).toBe(0);
      expect(demo.stdout).toMatch(/all \d+ checks passed/);
    } finally {
      const down = await execa(netpol, ["demo", "--down", "--name", name], away);
      expect(down.stdout).toContain("lab removed");
    }
  }, 240_000);
});

describeLive("deploy/install.sh into a temporary root", () => {
  let destdir: string;
  let ns: Netns;
  const install = (...args: string[]) =>
    execa("bash", [path.join(root, "deploy/install.sh"), ...args], {
      env: { DESTDIR: destdir, PREFIX: "/usr/local", NETPOL_TARBALL: tarball, NETPOL_SITE: "vps" },
      reject: false,
    });

  beforeAll(async () => {
    destdir = path.join(tmp, "root");
    await mkdir(destdir);
    ns = await createNetns("netpol-inst");
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it("lays out the binary, /etc/netpol (keys 0700, token 0600), the state dir and the units", async () => {
    const r = await install();
    expect(r.exitCode, r.stderr).toBe(0);
    const at = (p: string) => path.join(destdir, p);
    expect((await execa(at("usr/local/bin/netpol"), ["--version"])).exitCode).toBe(0);
    expect(mode(at("etc/netpol/keys"))).toBe("700");
    expect(mode(at("etc/netpol/token"))).toBe("600");
    expect(readFileSync(at("etc/netpol/token"), "utf8").trim().length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(at("etc/netpol/netpol.env"), "utf8")).toContain("NETPOL_SITE=vps");
    expect(mode(at("var/lib/netpol"))).toBe("700");
    expect(readFileSync(at("usr/share/bash-completion/completions/netpol"), "utf8")).toContain(
      "complete -o filenames -F _netpol netpol",
    );
    expect(existsSync(at("etc/systemd/networkd.conf.d/netpol.conf"))).toBe(true);
    const unit = readFileSync(at("etc/systemd/system/netpol-apply.service"), "utf8");
    expect(unit).toContain("ExecStart=/usr/local/bin/netpol apply --in-force");
  }, 120_000);

  it("installs units that pass systemd-analyze verify, with a low exposure score", async () => {
    // verify checks that ExecStart exists: point the units at the binary inside DESTDIR.
    const units = path.join(tmp, "units");
    await cp(path.join(destdir, "etc/systemd/system"), units, { recursive: true });
    const names = (await readdir(units)).filter((f) => f.endsWith(".service"));
    expect(names.sort()).toEqual([
      "netpol-agent.service",
      "netpol-apply.service",
      "netpol-serve.service",
      "netpol-watch.service",
    ]);
    for (const name of names) {
      const file = path.join(units, name);
      const text = readFileSync(file, "utf8").replaceAll(
        "/usr/local/bin/netpol",
        path.join(destdir, "usr/local/bin/netpol"),
      );
      await writeFile(file, text);
    }
    const verify = await execa("systemd-analyze", ["verify", ...names], {
      cwd: units,
      reject: false,
    });
    expect(verify.exitCode, verify.stderr).toBe(0);
    expect(verify.stderr).toBe("");
    for (const name of names) {
      const security = await execa(
        "systemd-analyze",
        ["security", "--offline=yes", path.join(units, name)],
        { reject: false },
      );
      const score = Number(/exposure level for [\w.-]+: ([\d.]+)/.exec(security.stdout)?.[1]);
      // The sandbox of the prefix drop-in is in force: 9.6 would mean "UNSAFE", none of it.
      expect(score, security.stdout).toBeLessThan(4);
    }
  }, 60_000);

  it("uninstall takes netpol's state down through netpol, then removes files; --purge the keys", async () => {
    const netpol = path.join(destdir, "usr/local/bin/netpol");
    const state = path.join(destdir, "var/lib/netpol");
    const policy = path.join(tmp, "small.yaml");
    await smallSite(ns, policy);
    const applied = await execa(
      netpol,
      ["apply", policy, "--site", "vps", "--netns", ns.name, "--state-dir", state],
      { reject: false },
    );
    expect(applied.exitCode, applied.stderr).toBe(0);
    const address = async () => (await ns.exec(["ip", "-o", "addr", "show", "lan0"])).stdout;
    expect(await address()).toContain("10.9.0.1/24");

    const r = await install("--uninstall");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`taking netpol's state down in netns-${ns.name}`);
    expect(await address()).not.toContain("10.9.0.1/24");
    expect((await ns.run(["nft", "list", "table", "inet", "netpol"])).exitCode).not.toBe(0);
    expect(existsSync(netpol)).toBe(false);
    expect(existsSync(state)).toBe(false);
    expect(existsSync(path.join(destdir, "etc/systemd/system/netpol-apply.service"))).toBe(false);
    expect(existsSync(path.join(destdir, "etc/netpol/token"))).toBe(true);

    const purged = await install("--uninstall", "--purge");
    expect(purged.exitCode, purged.stderr).toBe(0);
    expect(existsSync(path.join(destdir, "etc/netpol"))).toBe(false);
  }, 120_000);
});
