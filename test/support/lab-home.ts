import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Lab } from "../../src/lab/lab.js";
import { labPolicy } from "../../src/lab/policy.js";
import { ADDR, GATEWAYS, labNames } from "../../src/lab/topology.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { withSecretFile } from "../../src/system/secret-file.js";
import { FakeKernel } from "./fake-kernel/kernel.js";
import { startLab } from "./lab.js";
import { uniqueSuffix } from "./netns.js";
import { fakeNode, liveNode, type TestNode } from "./node.js";

/** The lab's home router, on the real lab or on a fake kernel set up the same way. */
export interface LabHome {
  readonly lab: Lab;
  readonly node: TestNode;
  down(): Promise<void>;
}

export async function liveHome(): Promise<LabHome> {
  const { lab, down } = await startLab();
  const node = liveNode(lab.names.ns("home"));
  return { lab, node, down };
}

/**
 * What `labUp` leaves in home's namespace, in a fake kernel: the LAN, VLAN-6 and WAN wires,
 * the default route, the provider tunnel (wireguard-go, an address and no routes), the
 * distro's NAT table and forwarding on.
 */
export async function fakeHome(): Promise<LabHome> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-fake-lab-"));
  const names = labNames(`f${uniqueSuffix().slice(0, 4)}`);
  const home = generateKeyPair();
  const vps = generateKeyPair();
  await mkdir(path.join(dir, "keys"), { mode: 0o700 });
  await writePrivateKey(path.join(dir, "keys", "home.key"), home.privateKey);
  await writePrivateKey(path.join(dir, "keys", "vps.key"), vps.privateKey);
  const kernel = new FakeKernel();
  const runner = kernel.runner(names.ns("home"));
  kernel.must("ip", ["link", "set", "dev", "lo", "up"]);
  kernel.plug("lan", "192.168.1.1/24");
  kernel.plug("vl6");
  kernel.plug("wan", "198.51.100.2/24");
  kernel.must("ip", ["route", "add", "default", "via", GATEWAYS.home ?? ""]);
  kernel.must("wireguard-go", [names.hma]);
  const far = generateKeyPair();
  await withSecretFile(
    path.join(dir, "secrets"),
    `[Interface]\nPrivateKey = ${generateKeyPair().privateKey}\n[Peer]\nPublicKey = ${far.publicKey}\nAllowedIPs = 0.0.0.0/0\nEndpoint = ${ADDR.vpnExit}:51820\nPersistentKeepalive = 5\n`,
    (file) => runner.run("wg", ["setconf", names.hma, file]),
  );
  kernel.must(
    "ip",
    ["-batch", "-"],
    `address add ${ADDR.hmaHome} dev ${names.hma}\nlink set dev ${names.hma} up\n`,
  );
  kernel.must("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
  kernel.must(
    "nft",
    ["-f", "-"],
    'table ip labnat {\n chain post { type nat hook postrouting priority srcnat; oifname "wan" ip saddr 192.168.1.0/24 masquerade; }\n}\n',
  );
  const lab: Lab = {
    names,
    dir,
    keys: { home: home.publicKey, vps: vps.publicKey },
    run: () => kernel.runner(names.ns("home")),
  };
  await writeFile(path.join(dir, "policy.yaml"), labPolicy(names, lab.keys), { mode: 0o600 });
  return { lab, node: fakeNode(kernel), down: () => rm(dir, { recursive: true, force: true }) };
}
