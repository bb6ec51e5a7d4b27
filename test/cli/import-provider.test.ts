import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/policy/load.js";
import { publicKeyOf } from "../../src/system/keys.js";

// `netpol import-provider`, run as a user runs it: the keys leave the provider's file for the
// key directory (0600), the policy lines it prints make a valid policy with no key in it.
const root = fileURLToPath(new URL("../../", import.meta.url));
const bin = path.join(root, "bin/netpol.js");
const fixtures = path.join(root, "test/policy/providers");

async function netpol(args: string[]) {
  const r = await execa("node", [bin, ...args], { reject: false, input: "" });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

let tmp: string;
beforeAll(async () => {
  if (!existsSync(path.join(root, "lib/main.cjs"))) throw new Error("build first: npm run build");
  tmp = await mkdtemp(path.join(os.tmpdir(), "netpol-import-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const keyDir = async (name: string) => {
  const dir = path.join(tmp, name);
  await mkdir(dir, { mode: 0o700 });
  return dir;
};

const siteWith = (lines: string, via: string) => `version: 1
sites:
  home:
    interfaces: [{ name: vl6, kind: physical }]
    networks: [{ name: files, cidr: 192.168.6.0/24, interface: vl6 }]
${lines}    egress: [{ name: vpn, from: [files], via: ${via}, masquerade: true }]
`;

describe("netpol import-provider", () => {
  it("moves the private and preshared keys into 0600 files and prints lines that make a valid policy without them", async () => {
    const dir = await keyDir("psk");
    const conf = path.join(fixtures, "airvpn-psk.conf");
    const r = await netpol(["import-provider", conf, "--name", "airvpn", "--key-dir", dir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(["airvpn.key", "airvpn.psk"]);
    for (const f of ["airvpn.key", "airvpn.psk"])
      expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    const key = (await readFile(path.join(dir, "airvpn.key"), "utf8")).trim();
    expect(key).toBe("qKSZFHqj4CTU6g1MC/LGoVWjQAkP+tqghCnQ9oGMPFE=");
    expect((await readFile(path.join(dir, "airvpn.psk"), "utf8")).trim()).toBe(
      "qnJqOZpeAQBGpr9+EKlvvz/P8xEZC6fAabFy0qTnqwk=",
    );
    expect(r.stdout).not.toContain(key);
    expect(r.stdout).not.toContain("qnJqOZpeAQBGpr9+EKlvvz/P8xEZC6fAabFy0qTnqwk=");
    expect(r.stdout).toContain(`publicKey: ${publicKeyOf(key)}`);
    expect(r.stdout).toMatch(/airvpn-psk\.conf:6: PostUp is wg-quick's/);
    const { intent } = parsePolicy(siteWith(r.stdout, "airvpn"), "p.yaml");
    expect(intent.sites[0]?.providers.map((p) => [p.device, p.peer.presharedKeyFile])).toEqual([
      ["airvpn", "airvpn.psk"],
    ]);
  });

  it("refuses a bad file with one line naming the file and line, and writes no key", async () => {
    const dir = await keyDir("bad");
    const conf = path.join(fixtures, "proton-ch.conf");
    const r = await netpol(["import-provider", conf, "--name", "bad name!", "--key-dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")[0]).toMatch(/--name bad name!/);
    const missing = await netpol([
      "import-provider",
      path.join(tmp, "nope.conf"),
      "--name",
      "x",
      "--key-dir",
      dir,
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.conf: it does not exist/);
    const broken = path.join(tmp, "broken.conf");
    const key = "qE1KrBXMmrCQm53tRWIEFvdox8fNaCBqllsYf/4x824=";
    await writeFile(broken, `[Interface]\nPrivateKey = ${key}\nAdress = 10.2.0.2/32\n`);
    const b = await netpol(["import-provider", broken, "--name", "proton", "--key-dir", dir]);
    expect(b.code).toBe(1);
    expect(b.stdout).toBe("");
    expect(b.stderr).not.toMatch(/^\s+at /m);
    expect(b.stderr).toContain(`${broken}:3: Adress is not a key of [Interface]`);
    expect(b.stderr).not.toContain(key);
    expect(await readdir(dir)).toEqual([]);
  });
});
