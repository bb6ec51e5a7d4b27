import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import { targetOf } from "../../src/apply/target.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { withRun } from "../../src/system/runner.js";
import { FakeKernel } from "../support/fake-kernel/kernel.js";

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Three bridges and a tunnel on home, or (`tunnel` false) the bridges alone. */
async function withTunnel(tunnel = true) {
  dir ??= await mkdtemp(path.join(os.tmpdir(), "netpol-execute-"));
  const home = generateKeyPair();
  const far = generateKeyPair();
  if (tunnel) await writePrivateKey(path.join(dir, "home.key"), home.privateKey);
  const bridges = [0, 1, 2].map((i) => `      - { name: nb${i}, kind: bridge }`).join("\n");
  const text = `version: 1
sites:
  home:
    interfaces:
${bridges}
  far:
    wan: fwan
    interfaces:
      - { name: fwan, kind: physical }
${
  tunnel
    ? `tunnels:
  - name: t1
    members:
      - { site: far, interface: fw0, address: 10.99.0.1/24, endpoint: 192.0.2.1:51821, publicKey: ${far.publicKey}, privateKeyFile: far.key }
      - { site: home, interface: wg0, address: 10.99.0.2/24, publicKey: ${home.publicKey}, privateKeyFile: home.key }
`
    : ""
}`;
  return { ...parsePolicy(text, "policy.yaml"), keyDir: dir, site: "home" };
}

/**
 * wireguard-go reads every link event of its namespace and exits when its netlink socket
 * overflows, which a burst of new links does to one that is still bringing its device up (seen
 * live under load: the apply then failed with `Cannot find device`). So an apply that makes
 * both starts it only once the kernel's links are made and up, and marks and brings up its
 * device after that.
 */
it("starts wireguard-go after the batch that makes the kernel's links, then marks and brings its device up", async () => {
  const input = await withTunnel();
  const kernel = new FakeKernel();
  const ran: string[] = [];
  const inner = kernel.runner();
  const runner = withRun(inner, (tool, args, options) => {
    ran.push([tool, ...args, options?.input ?? ""].join(" "));
    return inner.run(tool, args, options);
  });
  await applySite(targetOf(runner, path.join(dir as string, "state")), input, "test");

  const bridgesMade = ran.findIndex((c) => /link add \S+ nb0 type bridge/.test(c));
  const started = ran.findIndex((c) => c.startsWith("wireguard-go wg0"));
  const setUp = ran.findIndex((c) => /link set dev wg0 (mtu \d+ )?up/.test(c));
  expect(bridgesMade).toBeGreaterThanOrEqual(0);
  expect(started).toBeGreaterThan(bridgesMade);
  expect(setUp).toBeGreaterThan(started);
  expect(kernel.state.links.find((l) => l.name === "wg0")).toMatchObject({ up: true });
});

/**
 * wireguard-go exits on its own (above), and its device goes with it: a link the plan removes
 * may be gone by the time the removal runs. It is where the plan wanted it; the apply goes on.
 */
it("removes links when one of them went by itself after the plan read it", async () => {
  const kernel = new FakeKernel();
  const tunnel = await withTunnel();
  const state = () => path.join(dir as string, "state");
  await applySite(targetOf(kernel.runner(), state()), tunnel, "test");
  const inner = kernel.runner();
  const runner = withRun(inner, (tool, args, options) => {
    // wireguard-go exits just before netpol deletes its device.
    if (options?.input?.includes("link delete dev wg0")) kernel.exec("ip", ["link", "del", "wg0"]);
    return inner.run(tool, args, options);
  });
  const bridgesAlone = await withTunnel(false);
  await applySite(targetOf(runner, state()), bridgesAlone, "test");
  const names = kernel.state.links.map((l) => l.name);
  expect(names).not.toContain("wg0");
  expect(names).toEqual(expect.arrayContaining(["nb0", "nb1", "nb2"]));
});
