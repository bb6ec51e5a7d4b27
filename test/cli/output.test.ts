import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, expect, it } from "vitest";
import { beforeAllLive, describeLive } from "../support/layers.js";
import { createNetns, type Netns } from "../support/netns.js";
import { VLAN_EGRESS_POLICY } from "../support/vlan-egress.js";

/** Output modes of the built CLI: --json, --quiet, colour, progress, completion, --version, `down`. */

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = path.join(root, "bin/netpol.js");
const ESC = "\u001b[";

async function netpol(args: string[], env: Record<string, string> = {}) {
  const r = await execa(process.execPath, [bin, ...args], {
    cwd: root,
    reject: false,
    input: "",
    env,
  });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The same on a pseudo-terminal (util-linux `script`), as a person at a shell runs it. */
async function onTerminal(args: string[], env: Record<string, string> = {}) {
  const command = [process.execPath, bin, ...args].map((a) => `'${a}'`).join(" ");
  // A CI variable makes Node report a 2-colour terminal (tty.getColorDepth): a person's
  // terminal has none, and CI sets it.
  const { CI: _ci, ...person } = process.env;
  const r = await execa("script", ["-qec", command, "/dev/null"], {
    cwd: root,
    reject: false,
    input: "",
    extendEnv: false,
    env: { ...person, TERM: "xterm", ...env },
  });
  return { code: r.exitCode, out: String(r.stdout) };
}

let tmp: string;
let ns: Netns;
let policy: string;
let target: string[];

beforeAllLive(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "netpol-output-"));
  policy = path.join(tmp, "policy.yaml");
  await writeFile(policy, VLAN_EGRESS_POLICY);
  ns = await createNetns("netpol-out");
  await ns.exec(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
  await ns.exec(["ip", "tuntap", "add", "ext0", "mode", "tun"]);
  for (const d of ["lan0", "lan1", "ext0"]) await ns.exec(["ip", "link", "set", d, "up"]);
  target = ["--netns", ns.name, "--state-dir", path.join(tmp, "state")];
});

afterAll(async () => {
  await ns?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const json = (text: string) => JSON.parse(text) as Record<string, unknown>;

describeLive("--json and --quiet", () => {
  it("every reporting command prints one JSON document, and nothing else on stdout", async () => {
    const validate = await netpol(["validate", policy, "--json"]);
    expect(validate.code).toBe(0);
    expect(json(validate.stdout)).toMatchObject({ file: policy, valid: true, sites: ["home"] });

    const out = path.join(tmp, "render");
    const render = await netpol(["render", policy, "--site", "home", "--out", out, "--json"]);
    expect(json(render.stdout)).toMatchObject({ site: "home" });
    expect(json(render.stdout).files).toContain(path.join(out, "nftables.nft"));

    const keygen = await netpol(["keygen", "--out", path.join(tmp, "k.key"), "--json"]);
    const key = json(keygen.stdout);
    expect(key.publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(keygen.stdout).not.toContain(readFileSync(path.join(tmp, "k.key"), "utf8").trim());

    const plan = await netpol(["plan", policy, "--site", "home", ...target, "--json"]);
    expect(plan.code).toBe(2);
    expect(json(plan.stdout)).toMatchObject({ site: "home", inSync: false });

    const apply = await netpol(["apply", policy, "--site", "home", ...target, "--json"]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(json(apply.stdout)).toMatchObject({ changed: true, plan: { site: "home" } });

    const status = await netpol(["status", ...target, "--json"]);
    expect(json(status.stdout)).toMatchObject({
      site: "home",
      version: json(readFileSync(path.join(root, "package.json"), "utf8")).version,
      drift: { inSync: true },
    });

    const down = await netpol(["down", ...target, "--json"]);
    expect(down.code, down.stderr).toBe(0);
    expect(json(down.stdout)).toMatchObject({ removed: true });
  });

  it("an error under --json is the HTTP error document, on stdout, with the exit code", async () => {
    const bad = path.join(tmp, "bad.yaml");
    await writeFile(
      bad,
      "version: 1\nsites:\n  home:\n    networks: [{ name: x, cidr: 10.0.0.1/8, interface: e }]\n",
    );
    const r = await netpol(["validate", bad, "--json"]);
    expect(r.code).toBe(1);
    expect(json(r.stdout)).toMatchObject({
      error: {
        code: "NETPOL_E_POLICY_INVALID",
        problems: expect.arrayContaining([
          expect.objectContaining({ path: "sites.home.networks[0].cidr", line: 4 }),
        ]),
      },
    });
  });

  it("--quiet prints nothing; the exit code tells", async () => {
    expect(await netpol(["validate", policy, "-q"])).toEqual({ code: 0, stdout: "", stderr: "" });
    const plan = await netpol(["plan", policy, "--site", "home", ...target, "--quiet"]);
    expect(plan).toEqual({ code: 2, stdout: "", stderr: "" });
  });

  it("status exits 0 in sync and 2 with drift, --quiet or not", async () => {
    expect((await netpol(["apply", policy, "--site", "home", ...target])).code).toBe(0);
    expect(await netpol(["status", ...target, "--quiet"])).toEqual({
      code: 0,
      stdout: "",
      stderr: "",
    });
    await ns.exec(["ip", "rule", "del", "priority", "201"]);
    expect(await netpol(["status", ...target, "--quiet"])).toEqual({
      code: 2,
      stdout: "",
      stderr: "",
    });
    const human = await netpol(["status", ...target]);
    expect(human.code).toBe(2);
    expect(human.stdout).toContain("drift: 1 changes pending");
    expect((await netpol(["apply", policy, "--site", "home", ...target])).code).toBe(0);
    expect((await netpol(["status", ...target, "--quiet"])).code).toBe(0);
  });
});

describeLive("netpol down", () => {
  it("removes what netpol made through an apply of an empty policy, and leaves the rest", async () => {
    const apply = await netpol(["apply", policy, "--site", "home", ...target]);
    expect(apply.code, apply.stderr).toBe(0);
    const rules = async () =>
      (JSON.parse((await ns.exec(["ip", "-j", "rule", "show"])).stdout) as { protocol?: string }[])
        .length;
    const netpolTable = async () =>
      (await ns.run(["nft", "list", "table", "inet", "netpol"])).exitCode === 0;
    const address = async () => (await ns.exec(["ip", "-o", "addr", "show", "lan0"])).stdout;
    const rulesBefore = await rules();
    expect(await netpolTable()).toBe(true);
    expect(await address()).toContain("192.168.6.1/24");

    const ofScope = () =>
      readdirSync(path.join(tmp, "state")).filter((f) => f.startsWith(`netns-${ns.name}.`));
    expect(ofScope()).toEqual(
      expect.arrayContaining([`netns-${ns.name}.json`, `netns-${ns.name}.compiled.json`]),
    );
    const down = await netpol(["down", ...target]);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toContain("netpol's state removed");
    expect(await netpolTable()).toBe(false);
    expect(await rules()).toBeLessThan(rulesBefore);
    expect(await address()).not.toContain("192.168.6.1/24");
    // The links were there before netpol: they stay.
    expect((await ns.run(["ip", "link", "show", "lan0"])).exitCode).toBe(0);
    expect((await netpol(["status", ...target])).stdout).toContain("no policy applied");
    // Nothing of the scope is left in the state directory: no record, no compiled policy.
    expect(ofScope()).toEqual([]);
    expect((await netpol(["down", ...target])).stdout).toContain("nothing to remove");
  });
});

describeLive("colour", () => {
  it("colours plan lines on a terminal, never with NO_COLOR, never into a pipe", async () => {
    const args = ["plan", policy, "--site", "home", ...target];
    const tty = await onTerminal(args);
    expect(tty.out).toContain("+ ");
    expect(tty.out).toContain(`${ESC}32m`);
    const noColor = await onTerminal(args, { NO_COLOR: "1" });
    expect(noColor.out).toContain("+ ");
    expect(noColor.out).not.toContain(ESC);
    const piped = await netpol(args);
    expect(piped.stdout).toContain("+ ");
    expect(piped.stdout).not.toContain(ESC);
  });

  it("marks errors on a terminal, and not in a pipe", async () => {
    const tty = await onTerminal(["validate", "/nonexistent.yaml"]);
    expect(tty.out).toContain(`${ESC}31mnetpol:`);
    const piped = await netpol(["validate", "/nonexistent.yaml"]);
    expect(piped.stderr).toMatch(/^netpol: cannot read policy/);
  });
});

describeLive("progress", () => {
  it("shows the apply's steps on a terminal, and none of it in a pipe", async () => {
    const tty = await onTerminal(["apply", policy, "--site", "home", ...target]);
    expect(tty.code).toBe(0);
    expect(tty.out).toContain("\r\u001b[Kreading ");
    expect(tty.out).toContain("applying: routing");
    expect(tty.out).toContain("verifying: reading ");
    expect(tty.out).toContain("applied and verified");
    const piped = await netpol(["down", ...target]);
    expect(piped.code, piped.stderr).toBe(0);
    expect(`${piped.stdout}${piped.stderr}`).not.toMatch(/applying:|reading |\r/);
  });
});

describeLive("completion and version", () => {
  /** Runs bash's completion function as the shell would for the words typed so far. */
  async function complete(words: string[]): Promise<string[]> {
    const script = (await netpol(["completion", "bash"])).stdout;
    const file = path.join(tmp, "netpol.bash");
    await writeFile(file, script);
    const r = await execa("bash", [
      "-c",
      `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _netpol; printf '%s\\n' "\${COMPREPLY[@]}"`,
      "bash",
      file,
      ...words,
    ]);
    return r.stdout.split("\n").filter(Boolean);
  }

  it("bash completes commands and each command's options from the command tree", async () => {
    expect(await complete(["netpol", "pl"])).toEqual(["plan"]);
    expect(await complete(["netpol", ""])).toEqual(
      expect.arrayContaining(["validate", "plan", "apply", "down", "status", "completion"]),
    );
    expect(await complete(["netpol", "plan", "--j"])).toEqual(["--json"]);
    expect(await complete(["netpol", "apply", "--con"])).toEqual(["--confirm"]);
    expect(await complete(["netpol", "status", "--netns", ns.name.slice(0, -3)])).toEqual([
      ns.name,
    ]);
    // Hidden commands stay hidden.
    expect(await complete(["netpol", "revert-"])).toEqual([]);
  });

  it("zsh completion is valid zsh naming every command", async () => {
    const r = await netpol(["completion", "zsh"]);
    expect(r.stdout.startsWith("#compdef netpol\n")).toBe(true);
    for (const c of ["validate", "plan", "apply", "down", "watch", "status", "serve"]) {
      expect(r.stdout).toContain(`    ${c}) _arguments`);
    }
    const file = path.join(tmp, "_netpol");
    await writeFile(file, r.stdout);
    expect((await execa("zsh", ["-n", file], { reject: false })).exitCode).toBe(0);
  });

  it("an unknown shell is one clear error", async () => {
    const r = await netpol(["completion", "fish"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("netpol completion bash");
  });

  it("--version prints package.json's version", async () => {
    const { version } = json(readFileSync(path.join(root, "package.json"), "utf8"));
    expect(await netpol(["--version"])).toEqual({ code: 0, stdout: version, stderr: "" });
  });
});
