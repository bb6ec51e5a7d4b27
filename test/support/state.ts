import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { PolicyInput } from "../../src/apply/source/input.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { createRunner, type Runner } from "../../src/system/runner.js";
import { createNetns, type Netns, uniqueSuffix } from "./netns.js";
import { liveNode, ownedSnapshot } from "./node.js";

/**
 * One namespace holding a router ("home") with a WAN, a LAN and an external egress device (veth
 * pairs, both ends inside), a WireGuard tunnel to a far site, and key files: no lab processes
 * that something else could take down. `policy(n)` grows it to a few hundred kernel objects:
 * `n` bridges, each with a network and an address, and an egress per network.
 */
export interface CrashSite {
  readonly ns: Netns;
  readonly dir: string;
  readonly stateDir: string;
  readonly wg: string;
  readonly homeKey: string;
  policy(bridges: number, extraEgress?: number): PolicyInput;
  /** The policy as a file in `dir`, for the CLI. */
  file(name: string, input: PolicyInput): Promise<string>;
  target(runner?: Runner): Target;
  cliArgs(file: string): string[];
  destroy(): Promise<void>;
}

export async function crashSite(): Promise<CrashSite> {
  const ns = await createNetns("crash");
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-crash-"));
  try {
    const lines = ["wan0", "lan0", "ext0"].flatMap((d) => [
      `link add ${d} type veth peer name ${d}p`,
      `link set dev ${d} up`,
      `link set dev ${d}p up`,
    ]);
    await ns.exec(
      ["ip", "-batch", "-"],
      `${lines.join("\n")}\naddress add 198.51.100.2/24 dev wan0\naddress add 192.168.1.1/24 dev lan0\n`,
    );
    await ns.exec(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]);
    const home = generateKeyPair();
    const far = generateKeyPair();
    await writePrivateKey(path.join(dir, "home.key"), home.privateKey);
    await writePrivateKey(path.join(dir, "far.key"), far.privateKey);
    const wg = `cw${uniqueSuffix()}`;
    const stateDir = path.join(dir, "state");
    const text = (bridges: number, extra: number) => {
      const range = (n: number) => Array.from({ length: n }, (_, i) => i);
      return `version: 1
sites:
  home:
    wan: wan0
    interfaces:
      - { name: wan0, kind: physical }
      - { name: lan0, kind: physical }
${range(bridges)
  .map((i) => `      - { name: nb${i}, kind: bridge }`)
  .join("\n")}
    networks:
      - { name: lan, cidr: 192.168.1.0/24, interface: lan0 }
${range(bridges)
  .map(
    (i) =>
      `      - { name: n${i}, cidr: 10.200.${i}.0/24, interface: nb${i}, address: 10.200.${i}.1 }`,
  )
  .join("\n")}
${range(bridges + extra)
  .slice(bridges)
  .map((i) => `      - { name: m${i}, cidr: 10.210.${i}.0/24, interface: lan0 }`)
  .join("\n")}
    external:
      - name: ext0
    egress:
      - { name: vpn, from: [lan], via: ext0, except: [192.168.0.0/16], masquerade: true, table: 3, priority: 200 }
${range(bridges + extra)
  .map(
    (i) =>
      `      - { name: x${i}, from: [${i < bridges ? `n${i}` : `m${i}`}], via: ext0, except: [10.${i}.0.0/16], table: ${50 + i}, priority: ${2000 + 2 * i} }`,
  )
  .join("\n")}
  far:
    wan: fwan
    interfaces:
      - { name: fwan, kind: physical }
tunnels:
  - name: t1
    members:
      - { site: far, interface: fw${wg.slice(2)}, address: 10.99.0.1/24, endpoint: 192.0.2.1:51821, publicKey: ${far.publicKey}, privateKeyFile: far.key }
      - { site: home, interface: ${wg}, address: 10.99.0.2/24, publicKey: ${home.publicKey}, privateKeyFile: home.key }
`;
    };
    const site: CrashSite = {
      ns,
      dir,
      stateDir,
      wg,
      homeKey: home.privateKey,
      policy: (bridges, extra = 0) => {
        const t = text(bridges, extra);
        return { ...parsePolicy(t, "crash.yaml"), keyDir: dir, site: "home" };
      },
      file: async (name, input) => {
        const file = path.join(dir, name);
        await writeFile(file, input.text);
        return file;
      },
      target: (runner = createRunner(ns.name)) => targetOf(runner, stateDir),
      cliArgs: (file) => [file, "--site", "home", "--netns", ns.name, "--state-dir", stateDir],
      destroy: async () => {
        await stopWireguardGoByName([wg]);
        await ns.destroy();
        await rm(dir, { recursive: true, force: true });
      },
    };
    return site;
  } catch (err) {
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A policy under which home owns nothing. */
export function emptyPolicy(site: CrashSite): PolicyInput {
  return {
    ...parsePolicy("version: 1\nsites:\n  home: {}\n", "empty.yaml"),
    keyDir: site.dir,
    site: "home",
  };
}

const SYSCTLS = /^net\.ipv[46]\.(ip_forward|conf\.[^.]+\.(forwarding|rp_filter|accept_ra)) /;

/**
 * Everything an apply can change in home, read back object by object: links (with mark, MTU,
 * state, master), addresses, owned routes and rules, nftables, sysctls, WireGuard configs and
 * the ownership record.
 */
export async function fullState(site: CrashSite): Promise<Record<string, unknown>> {
  const ns = site.ns.name;
  const inNs = async (args: string[]) =>
    (await execa("ip", ["netns", "exec", ns, ...args], { reject: false })).stdout;
  const links = JSON.parse(await inNs(["ip", "-j", "-d", "link", "show"])) as {
    ifname: string;
    ifalias?: string;
    mtu: number;
    flags: string[];
    master?: string;
    linkinfo?: { info_kind?: string };
  }[];
  const wg: Record<string, string> = {};
  for (const l of links.filter((x) => x.linkinfo?.info_kind === "tun")) {
    wg[l.ifname] = await inNs(["wg", "showconf", l.ifname]);
  }
  const record = await readFile(path.join(site.stateDir, `netns-${ns}.json`), "utf8").catch(
    () => null,
  );
  return {
    ...(await ownedSnapshot(liveNode(ns))),
    linkDetails: links
      .map((l) => ({
        name: l.ifname,
        alias: l.ifalias ?? null,
        mtu: l.mtu,
        up: l.flags.includes("UP"),
        master: l.master ?? null,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    allAddresses: await inNs(["ip", "-br", "address"]),
    sysctls: (await inNs(["sysctl", "-a"]))
      .split("\n")
      .filter((l) => SYSCTLS.test(l))
      .sort(),
    wg,
    record,
  };
}

/** Files under the temp directory (outside `except`) that hold any of the given secrets. */
export async function secretsInTemp(secrets: readonly string[], except: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (full === except) continue;
      if (e.isDirectory() && depth < 3) await walk(full, depth + 1);
      else if (e.isFile()) {
        const text = await readFile(full, "utf8").catch(() => "");
        if (secrets.some((s) => text.includes(s))) found.push(full);
      }
    }
  };
  await walk(os.tmpdir(), 0);
  return found;
}
