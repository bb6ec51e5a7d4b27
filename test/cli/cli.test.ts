import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { parsePolicy } from "../../src/policy/load.js";
import { itLive } from "../support/layers.js";
import { createNetns } from "../support/netns.js";

/** The built CLI, run as a user runs it: `node bin/netpol.js ...`. */

const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = path.join(root, "bin/netpol.js");
const policyFiles = readdirSync(path.join(root, "policies"))
  .filter((f) => f.endsWith(".yaml"))
  .sort();

async function netpol(args: string[], cwd = root) {
  const r = await execa("node", [bin, ...args], {
    cwd,
    reject: false,
    input: "",
    stripFinalNewline: false,
  });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const lines = (text: string) => text.split("\n").filter((l) => l !== "");
const noStack = (text: string) => expect(text).not.toMatch(/^\s+at /m);
const escapeRe = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

let tmp: string;

beforeAll(async () => {
  if (!existsSync(path.join(root, "lib/main.cjs"))) {
    throw new Error("lib/main.cjs is missing: build first with `npm run build` (npm test does)");
  }
  tmp = await mkdtemp(path.join(os.tmpdir(), "netpol-cli-"));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("netpol validate", () => {
  for (const file of policyFiles) {
    it(`accepts ${file} and summarizes each site`, async () => {
      const rel = `policies/${file}`;
      const r = await netpol(["validate", rel]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const out = lines(r.stdout);
      expect(out[0]).toBe(`${rel}: valid`);
      const { intent } = parsePolicy(readFileSync(path.join(root, rel), "utf8"), rel);
      const siteLines = out.filter((l) => l.startsWith("site "));
      expect(siteLines.map((l) => l.split(" ")[1])).toEqual(intent.sites.map((s) => s.name));
      // Each site has something under it.
      for (const s of intent.sites) {
        const at = out.findIndex((l) => l.startsWith(`site ${s.name}`));
        expect(out[at + 1]).toMatch(/^ {2}\S/);
      }
    });
  }

  it("lists every schema problem as file:line:col path: message, exit 1, no stack", async () => {
    const file = path.join(tmp, "bad-schema.yaml");
    await writeFile(
      file,
      [
        "version: 1",
        "sites:",
        "  home:",
        "    interfaces:",
        "      - name: eth0",
        "        kind: physical",
        "    networks:",
        "      - name: files",
        "        cidr: 192.168.6.1/24",
        "        interface: eth0",
        "        colour: blue",
        "",
      ].join("\n"),
    );
    const r = await netpol(["validate", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    noStack(r.stderr);
    const problems = lines(r.stderr).filter((l) => !l.startsWith("netpol: "));
    expect(problems).toEqual([
      `${file}:9:15 sites.home.networks[0].cidr: 192.168.6.1/24 has host bits set; did you mean 192.168.6.0/24?`,
      expect.stringMatching(
        new RegExp(
          `^${escapeRe(file)}:11:\\d+ sites\\.home\\.networks\\[0\\]\\.colour: unknown field "colour"`,
        ),
      ),
    ]);
    expect(lines(r.stderr)[0]).toBe(`netpol: ${file}: 2 problems`);
  });

  it("lists every cross-reference problem with its place", async () => {
    const file = path.join(tmp, "bad-refs.yaml");
    await writeFile(
      file,
      [
        "version: 1",
        "sites:",
        "  home:",
        "    wan: eth9",
        "    interfaces:",
        "      - name: eth0",
        "        kind: physical",
        "    networks:",
        "      - name: files",
        "        cidr: 192.168.6.0/24",
        "        interface: eth3",
        "    egress:",
        "      - name: vpn",
        "        from: [files, nope]",
        "        via: tun-x",
        "",
      ].join("\n"),
    );
    const r = await netpol(["validate", file]);
    expect(r.code).toBe(1);
    noStack(r.stderr);
    const problems = lines(r.stderr).filter((l) => !l.startsWith("netpol: "));
    expect(problems).toHaveLength(4);
    for (const p of problems) {
      expect(p).toMatch(
        new RegExp(`^${escapeRe(file)}:\\d+:\\d+ sites\\.home\\.[\\w.\\[\\]]+: \\S.*$`),
      );
    }
    expect(problems[0]).toMatch(
      new RegExp(`^${escapeRe(file)}:4:\\d+ sites\\.home\\.wan: unknown interface eth9`),
    );
    expect(problems[1]).toMatch(
      /:11:\d+ sites\.home\.networks\[0\]\.interface: unknown interface eth3/,
    );
    expect(problems[2]).toMatch(
      /:14:\d+ sites\.home\.egress\[0\]\.from\[1\]: .*no network named nope/,
    );
    expect(problems[3]).toMatch(/:15:\d+ sites\.home\.egress\[0\]\.via: tun-x is neither/);
  });

  it("places a YAML-level error (duplicate key) at its line", async () => {
    const file = path.join(tmp, "dup.yaml");
    await writeFile(file, "version: 1\nsites:\n  home: {}\n  home: {}\n");
    const r = await netpol(["validate", file]);
    expect(r.code).toBe(1);
    noStack(r.stderr);
    expect(lines(r.stderr)).toContain(`${file}:4:3 YAML: Map keys must be unique`);
  });

  it("says so in one line when the file is missing", async () => {
    const file = path.join(tmp, "no-such-policy.yaml");
    const r = await netpol(["validate", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(lines(r.stderr)).toEqual([`netpol: cannot read policy ${file}: ENOENT`]);
  });
});

describe("netpol keygen", () => {
  const keygen = async (name: string) => {
    const file = path.join(tmp, name);
    const r = await netpol(["keygen", "--out", file]);
    return { r, file, privateKey: await readFile(file, "utf8").catch(() => "") };
  };

  it("writes a 0600 key file and prints its public key, never the private one", async () => {
    const { r, file, privateKey } = await keygen("fresh.key");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(privateKey).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(r.stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
    expect(r.stdout).not.toContain(privateKey.trim());
  });

  itLive("prints the public key wg agrees with", async () => {
    const { r, privateKey } = await keygen("checked.key");
    // Every wg command a test runs goes into a namespace of its own.
    const ns = await createNetns("netpol-cli");
    try {
      expect((await ns.exec(["wg", "pubkey"], privateKey)).stdout.trim()).toBe(r.stdout.trim());
    } finally {
      await ns.destroy();
    }
  });

  it("refuses to overwrite an existing file", async () => {
    const file = path.join(tmp, "taken.key");
    await writeFile(file, "precious\n", { mode: 0o600 });
    const r = await netpol(["keygen", "--out", file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    noStack(r.stderr);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/already exists/)]);
    expect(await readFile(file, "utf8")).toBe("precious\n");
  });
});

describe("netpol render", () => {
  let dir: string;
  let policy: string;

  /** A copy of example B with keys made by `netpol keygen`, so the public keys match. */
  beforeAll(async () => {
    dir = path.join(tmp, "render");
    await mkdir(path.join(dir, "keys"), { recursive: true });
    const doc = parseYaml(readFileSync(path.join(root, "policies/b-publish-via-vps.yaml"), "utf8"));
    for (const t of doc.tunnels) {
      for (const m of t.members) {
        const r = await netpol(["keygen", "--out", path.join(dir, m.privateKeyFile)]);
        expect(r.code).toBe(0);
        m.publicKey = r.stdout.trim();
      }
    }
    policy = path.join(dir, "policy.yaml");
    await writeFile(policy, stringifyYaml(doc));
  });

  it("writes every file a publishing site needs, owner-only, without printing keys", async () => {
    const out = path.join(dir, "out-vps");
    const r = await netpol(["render", policy, "--site", "vps", "--out", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const expected = [
      "caddy.json",
      "ip.batch",
      "nftables.nft",
      "sysctl.conf",
      "wireguard/wg-home.conf",
    ];
    for (const f of expected) {
      expect(existsSync(path.join(out, f))).toBe(true);
      expect(r.stdout).toContain(`wrote ${path.join(out, f)}`);
    }
    expect((await stat(path.join(out, "wireguard/wg-home.conf"))).mode & 0o777).toBe(0o600);
    const key = (await readFile(path.join(dir, "keys/vps.key"), "utf8")).trim();
    expect(await readFile(path.join(out, "wireguard/wg-home.conf"), "utf8")).toContain(
      `PrivateKey = ${key}\n`,
    );
    expect(r.stdout).not.toContain(key);
    expect(JSON.parse(await readFile(path.join(out, "caddy.json"), "utf8"))).toHaveProperty(
      "apps.http.servers.netpol",
    );
  });

  it("writes no caddy.json for a site that publishes nothing", async () => {
    const out = path.join(dir, "out-home");
    const r = await netpol(["render", policy, "--site", "home", "--out", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(existsSync(path.join(out, "wireguard/wg-home.conf"))).toBe(true);
    expect(existsSync(path.join(out, "caddy.json"))).toBe(false);
  });

  it("refuses a key file that group or others can read", async () => {
    const keyFile = path.join(dir, "keys/home.key");
    await chmod(keyFile, 0o644);
    try {
      const out = path.join(dir, "out-loose");
      const r = await netpol(["render", policy, "--site", "home", "--out", out]);
      expect(r.code).toBe(1);
      noStack(r.stderr);
      expect(lines(r.stderr)).toEqual([
        `netpol: key file ${keyFile} has mode 644; others can read it. Run \`chmod 600 ${keyFile}\``,
      ]);
      expect(existsSync(out)).toBe(false);
    } finally {
      await chmod(keyFile, 0o600);
    }
  });

  it("refuses a key file path that leaves the policy's directory", async () => {
    const doc = parseYaml(await readFile(policy, "utf8"));
    doc.tunnels[0].members.find((m: { site: string }) => m.site === "home").privateKeyFile =
      "../../etc/passwd";
    const escaping = path.join(dir, "escaping.yaml");
    await writeFile(escaping, stringifyYaml(doc));
    const out = path.join(dir, "out-escape");
    const r = await netpol(["render", escaping, "--site", "home", "--out", out]);
    expect(r.code).toBe(1);
    noStack(r.stderr);
    expect(lines(r.stderr)).toEqual([
      `netpol: key file "../../etc/passwd" lies outside the key directory ${dir}; keep keys there (see --key-dir)`,
    ]);
    expect(r.stderr).not.toContain("root:");
    expect(existsSync(out)).toBe(false);
  });

  it("renders every example for every site out of the box: a placeholder and a warning where no key was made yet", async () => {
    for (const file of policyFiles) {
      const example = path.join(root, "policies", file);
      const sites = Object.keys(parseYaml(readFileSync(example, "utf8")).sites);
      for (const site of sites) {
        const out = path.join(dir, `example-${file}-${site}`);
        const r = await netpol(["render", example, "--site", site, "--out", out]);
        expect(r.code, r.stderr).toBe(0);
        noStack(r.stderr);
        for (const conf of readdirSync(out, { recursive: true, encoding: "utf8" })) {
          if (!conf.startsWith("wireguard/")) continue;
          const text = await readFile(path.join(out, conf), "utf8");
          expect(text).toMatch(
            /^PrivateKey = \(placeholder: no key file keys\/\w+\.key; run netpol keygen/m,
          );
          expect(r.stderr).toMatch(/warning: .*keys\/\w+\.key does not exist/);
        }
      }
    }
  });

  it("names the known sites for an unknown one", async () => {
    const out = path.join(dir, "out-nosuch");
    const r = await netpol(["render", policy, "--site", "nosuch", "--out", out]);
    expect(r.code).toBe(1);
    noStack(r.stderr);
    expect(lines(r.stderr)).toEqual([
      "netpol: no site nosuch in this policy; pick one of: home, vps",
    ]);
    expect(existsSync(out)).toBe(false);
  });
});

describe("netpol apply --confirm", () => {
  it.each(["1e99", "0x10", "2147484", "0"])(
    "refuses --confirm %s with one usage line, exit 1, before touching anything",
    async (value) => {
      const file = path.join(tmp, "confirm.yaml");
      await writeFile(file, "version: 1\nsites:\n  home: {}\n");
      const state = path.join(tmp, "confirm-state");
      const r = await netpol([
        "apply",
        file,
        "--site",
        "home",
        "--confirm",
        value,
        "--state-dir",
        state,
      ]);
      expect(r.code).toBe(1);
      noStack(r.stderr);
      expect(lines(r.stderr)).toEqual([
        `netpol: --confirm takes a whole number of seconds from 1 to 86400 (a day), written in decimal digits, not "${value}"`,
      ]);
      expect(existsSync(state)).toBe(false);
    },
  );
});

describe("netpol apply and watch: a file or --in-force", () => {
  it.each([
    [["apply"], "give the policy file to apply, or --in-force for the policy in force here"],
    [["apply", "p.yaml", "--in-force"], "give a policy file or --in-force, not both"],
    [["apply", "p.yaml"], "--site is needed: a policy holds every site"],
    [["watch"], "give the policy file to apply, or --in-force for the policy in force here"],
  ])("netpol %j is one usage line", async (args, says) => {
    const r = await netpol([...args, "--state-dir", path.join(tmp, "choice-state")]);
    expect(r.code).toBe(1);
    noStack(r.stderr);
    expect(lines(r.stderr)).toEqual([`netpol: ${says}`]);
  });

  it("says there is no policy in force, for --in-force and show-policy", async () => {
    const state = ["--state-dir", path.join(tmp, "empty-state")];
    for (const args of [["apply", "--in-force"], ["show-policy"]]) {
      const r = await netpol([...args, ...state]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("no policy is in force on host");
    }
  });
});
