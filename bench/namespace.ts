import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { applySite } from "../src/apply/apply.js";
import { type Target, targetOf } from "../src/apply/target.js";
import { stopWireguardGoByName } from "../src/lab/processes.js";
import { parsePolicy } from "../src/policy/load.js";
import { createRunner } from "../src/system/runner.js";
import { VLAN_EGRESS_POLICY } from "../test/support/vlan-egress.js";

/**
 * A throwaway network namespace with the devices a bench policy expects. Every command of the
 * benchmark runs in one of these, through `ip netns exec`, as netpol's own runner does.
 */
export interface BenchNs {
  readonly name: string;
  run(argv: readonly string[], input?: string): Promise<string>;
  destroy(): Promise<void>;
}

export const suffix = () => randomBytes(3).toString("hex");

export async function createBenchNs(devices: {
  physical: readonly string[];
  external: readonly string[];
  wireguard: readonly string[];
}): Promise<BenchNs> {
  const name = `npbench-${suffix()}`;
  await execa("ip", ["netns", "add", name]);
  const ns: BenchNs = {
    name,
    async run(argv, input) {
      const r = await execa("ip", ["netns", "exec", name, ...argv], {
        input: input ?? "",
        env: { LC_ALL: "C" },
      });
      return r.stdout;
    },
    async destroy() {
      // wireguard-go outlives its namespace: stop the ones named here, by PID.
      await stopWireguardGoByName(devices.wireguard);
      await execa("ip", ["netns", "del", name], { reject: false });
    },
  };
  try {
    const setup = [
      ...devices.physical.flatMap((d) => [
        `link add ${d} type veth peer name ${d}p`,
        `link set ${d} up`,
        `link set ${d}p up`,
      ]),
      ...devices.external.flatMap((d) => [`tuntap add ${d} mode tun`, `link set ${d} up`]),
      "link set lo up",
    ];
    await ns.run(["ip", "-batch", "-"], `${setup.join("\n")}\n`);
  } catch (err) {
    await ns.destroy();
    throw err;
  }
  return ns;
}

/**
 * The site the `/status` benches serve: a namespace holding the VLAN-egress test policy,
 * applied, and its state directory. `destroy` removes both.
 */
export async function statusBenchSite(): Promise<{
  readonly target: Target;
  readonly stateDir: string;
  destroy(): Promise<void>;
}> {
  const ns = await createBenchNs({ physical: ["lan0"], external: ["ext0"], wireguard: [] });
  const stateDir = await mkdtemp(path.join(os.tmpdir(), "netpol-bench-"));
  const destroy = async () => {
    await ns.destroy();
    await rm(stateDir, { recursive: true, force: true });
  };
  try {
    const target = targetOf(createRunner(ns.name), stateDir);
    const policy = parsePolicy(VLAN_EGRESS_POLICY, "bench.yaml");
    await applySite(target, { ...policy, keyDir: stateDir, site: "home" }, "bench");
    return { target, stateDir, destroy };
  } catch (err) {
    await destroy();
    throw err;
  }
}
