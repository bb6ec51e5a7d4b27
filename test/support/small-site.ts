import { writeFile } from "node:fs/promises";
import type { Netns } from "./netns.js";

/**
 * The smallest site that applies in a bare namespace: a veth `lan0` (up) on which the policy's
 * one network puts the address 10.9.0.1/24, for site `vps`. Writes the policy to `file`.
 */
export async function smallSite(ns: Netns, file: string): Promise<void> {
  await ns.exec(["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"]);
  await ns.exec(["ip", "link", "set", "lan0", "up"]);
  await writeFile(
    file,
    "version: 1\nsites:\n  vps:\n    interfaces: [{ name: lan0, kind: physical }]\n    networks: [{ name: n, cidr: 10.9.0.0/24, interface: lan0, address: 10.9.0.1 }]\n",
  );
}
