import { readdir, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import type { PolicyInput } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { labInput } from "./lab.js";
import { ownedSnapshot } from "./live.js";

/**
 * Home's lab policy grown to a few hundred kernel objects: `n` bridges, each with a network and
 * an address, and an egress per network (its rules and routes), beside the lab's WireGuard link.
 */
export function bigInput(lab: Lab, n: number): PolicyInput {
  return labInput(lab, "home", (t) => {
    const links = Array.from({ length: n }, (_, i) => `      - { name: nb${i}, kind: bridge }`);
    const nets = Array.from(
      { length: n },
      (_, i) =>
        `      - { name: n${i}, cidr: 10.200.${i}.0/24, interface: nb${i}, address: 10.200.${i}.1 }`,
    );
    const egress = Array.from(
      { length: n },
      (_, i) =>
        `      - { name: x${i}, from: [n${i}], via: ${lab.names.hma}, except: [10.${i}.0.0/16], table: ${50 + i}, priority: ${2000 + 2 * i} }`,
    );
    return t
      .replace("    interfaces:\n", `    interfaces:\n${links.join("\n")}\n`)
      .replace("    networks:\n", `    networks:\n${nets.join("\n")}\n`)
      .replace("    egress:\n", `    egress:\n${egress.join("\n")}\n`);
  });
}

const SYSCTLS = /^net\.ipv[46]\.(ip_forward|conf\.[^.]+\.(forwarding|rp_filter|accept_ra)) /;

/**
 * Everything an apply can change in home, read back object by object: links (with mark, MTU,
 * state, master), addresses, owned routes and rules, nftables, sysctls, WireGuard configs and
 * the ownership record.
 */
export async function fullState(lab: Lab): Promise<Record<string, unknown>> {
  const ns = lab.names.ns("home");
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
  const stateDir = path.join(lab.dir, "state");
  const record = await readFile(path.join(stateDir, `netns-${ns}.json`), "utf8").catch(() => null);
  return {
    ...(await ownedSnapshot(ns)),
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
