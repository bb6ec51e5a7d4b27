import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, expect, it } from "vitest";
import { applySite } from "../../src/apply/apply.js";
import type { Lab } from "../../src/lab/lab.js";
import { addCounter, counterPackets, eventually, httpGet } from "../../src/lab/probe.js";
import { kill, startWireguardGo, stopWireguardGoByName } from "../../src/lab/processes.js";
import { ADDR, WHOAMI_PORT } from "../../src/lab/topology.js";
import { generateKeyPair, writePrivateKey } from "../../src/system/keys.js";
import { withSecretFile } from "../../src/system/secret-file.js";
import { homeArgs, labInput, siteTarget, startLab } from "../support/lab.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, uniqueSuffix } from "../support/netns.js";
import { startWatch } from "../support/watcher.js";

// A commercial provider's wg-quick file, imported with `netpol import-provider`, becomes a
// path netpol runs itself. The lab's "vpn" namespace is the provider: a wireguard-go server of
// its own, masquerading what it forwards to the internet. VLAN 6 reaches the internet by the
// imported path; the home's main table and its default route stay exactly as they were.
const PROVIDER_PORT = 51830;
/** The command's output without its comments: the lines that go under sites.home. */
const policyLines = (out: string) =>
  `${out
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .join("\n")}\n`;
const SERVER_ADDRESS = "10.64.0.1/16";
const HOME_ADDRESS = "10.64.12.34/32";

describeLive("a WireGuard provider imported from its wg-quick file", () => {
  let lab: Lab;
  let down: () => Promise<void>;
  let serverPid = 0;
  let server = "";
  let device = "";
  let importOut = "";
  const www = `http://${ADDR.www}:${WHOAMI_PORT}/`;
  // Main's routes, but the link-local ones the kernel adds for every new device.
  const main = async () => {
    const show = async (family: string) =>
      (await lab.run("home").run("ip", [family, "route", "show", "table", "main"])).stdout
        .split("\n")
        .filter((l) => !l.startsWith("fe80::/64 "));
    return [...(await show("-4")), ...(await show("-6"))];
  };
  const defaults = (routes: readonly string[]) => routes.filter((l) => /^default /.test(l));
  let mainBefore: string[];

  beforeAll(async () => {
    ({ lab, down } = await startLab());
    server = `${lab.names.prefix}mvs`.slice(-15);
    device = `${lab.names.prefix}mvh`.slice(-15);
    // The provider's server, as the provider runs it: the home's key is one of its peers.
    const serverKeys = generateKeyPair();
    const homeKeys = generateKeyPair();
    serverPid = await startWireguardGo(lab.names.ns("vpn"), server);
    await withSecretFile(
      path.join(lab.dir, "secrets"),
      `[Interface]\nPrivateKey = ${serverKeys.privateKey}\nListenPort = ${PROVIDER_PORT}\n[Peer]\nPublicKey = ${homeKeys.publicKey}\nAllowedIPs = ${HOME_ADDRESS}\n`,
      (file) => lab.run("vpn").run("wg", ["setconf", server, file]),
    );
    await lab.run("vpn").run("ip", ["-batch", "-"], {
      input: `address add ${SERVER_ADDRESS} dev ${server}\nlink set dev ${server} up\n`,
    });
    // What the provider's web page hands the user: a wg-quick file.
    const conf = path.join(lab.dir, "provider.conf");
    await writeFile(
      conf,
      `[Interface]\n# Device: Test Otter\nPrivateKey = ${homeKeys.privateKey}\nAddress = ${HOME_ADDRESS}\nDNS = 10.64.0.1\n\n[Peer]\nPublicKey = ${serverKeys.publicKey}\nAllowedIPs = 0.0.0.0/0,::/0\nEndpoint = ${ADDR.vpnExit}:${PROVIDER_PORT}\n`,
      { mode: 0o600 },
    );
    const r = await execa(process.execPath, [
      "bin/netpol.js",
      "import-provider",
      conf,
      "--name",
      device,
      "--key-dir",
      lab.dir,
    ]);
    importOut = r.stdout;
    await addCounter(lab.names.ns("isp"), "vl6leak", `iifname "home" ip saddr 192.168.6.0/24`);
    // On the provider's side: VLAN 6's requests arriving through its server, from the home's address.
    await addCounter(
      lab.names.ns("vpn"),
      "bytunnel",
      `iifname "${server}" ip saddr ${HOME_ADDRESS.split("/")[0]} tcp dport ${WHOAMI_PORT}`,
    );
    mainBefore = await main();
  });
  afterAll(async () => {
    if (serverPid) kill(serverPid);
    if (device) await stopWireguardGoByName([server, device]);
    await down?.();
  });

  // The lab's policy with the imported lines added to home and VLAN 6 sent by the provider.
  const imported = (text: string) =>
    text
      .replace(
        "    egress:\n      - name: vpn\n",
        `${policyLines(importOut)}    egress:\n      - name: vpn\n`,
      )
      .replace(`        via: ${lab.names.hma}\n`, `        via: ${device}\n`);

  it("sends VLAN 6 to the internet through the imported path, main's routes untouched", async () => {
    await applySite(siteTarget(lab, "home"), labInput(lab, "home", imported), "test");
    const r = await eventually(
      () => httpGet(lab.names.ns("vl6"), www, 1500),
      (x) => x.ok,
      10_000,
    );
    // The provider's exit address: it left by the provider, not by home's own uplink.
    expect(r).toEqual({ ok: true, text: ADDR.vpnExit });
    expect(await counterPackets(lab.names.ns("vpn"), "bytunnel")).toBeGreaterThan(0);
    const dump = (await lab.run("vpn").run("wg", ["show", server, "dump"])).stdout;
    const peer = dump.split("\n")[1]?.split("\t") ?? [];
    expect(Number(peer[4])).toBeGreaterThan(0); // a handshake with the home happened
    expect(await counterPackets(lab.names.ns("isp"), "vl6leak")).toBe(0);
    // Read back: main is what it was; nothing routes by the provider's device there.
    const after = await main();
    expect(defaults(after)).toEqual(defaults(mainBefore));
    expect(defaults(after)).toEqual([
      expect.stringMatching(/^default via 198\.51\.100\.1 dev wan/),
    ]);
    expect(after.filter((l) => l.includes(device) || /^(0|128)\.0\.0\.0\/1 /.test(l))).toEqual([]);
  });

  it("keeps the keys out of the policy and configures the device from the key directory", async () => {
    const text = labInput(lab, "home", imported).text;
    expect(text).toContain(`privateKeyFile: "${device}.key"`);
    expect(text).not.toMatch(/PrivateKey|privateKey:/);
    const show = (await lab.run("home").run("wg", ["show", device, "dump"])).stdout;
    const [iface, peer] = show.split("\n");
    expect(iface?.split("\t")[1]).toBe(importOut.match(/^ {8}publicKey: (\S+)$/m)?.[1]);
    expect(peer?.split("\t")[2]).toBe(`${ADDR.vpnExit}:${PROVIDER_PORT}`);
    expect(peer?.split("\t")[3]).toBe("0.0.0.0/0,::/0");
  });

  it("stays in sync: a plan after the apply finds nothing to change on the provider's device", async () => {
    await writeFile(path.join(lab.dir, "policy.yaml"), labInput(lab, "home", imported).text, {
      mode: 0o600,
    });
    const r = await execa(process.execPath, ["bin/netpol.js", "plan", ...homeArgs(lab)], {
      reject: false,
    });
    expect(r.stdout).toMatch(/in sync/);
    expect(r.exitCode).toBe(0);
  });
});

// A provider's endpoint given as a name is looked up by wg when netpol configures the device,
// and again by the health monitor when the path goes down: a provider that moved its server
// must not leave the path dead on the old address.
describeLive("a provider endpoint given as a host name", () => {
  let ns: Netns;
  let dir = "";
  let watch: ReturnType<typeof startWatch> | undefined;
  const device = `pr${uniqueSuffix()}`;
  const peer = generateKeyPair().publicKey;
  const endpoints = async () =>
    (await ns.exec(["wg", "show", device, "endpoints"])).stdout.trim().split("\t")[1];
  const LOCAL = /^(127\.0\.0\.1|\[::1\]):51830$/;

  beforeAll(async () => {
    ns = await createNetns("npres");
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-reresolve-"));
    await chmod(dir, 0o700);
    const own = generateKeyPair();
    await writePrivateKey(path.join(dir, `${device}.key`), own.privateKey);
    await ns.exec(["ip", "link", "set", "dev", "lo", "up"]);
    await ns.exec(["ip", "link", "add", "vl6", "type", "veth", "peer", "name", "vl6p"]);
    await writeFile(
      path.join(dir, "policy.yaml"),
      `version: 1
sites:
  home:
    interfaces: [{ name: vl6, kind: physical }]
    networks: [{ name: files, cidr: 192.168.6.0/24, interface: vl6, address: 192.168.6.1 }]
    providers:
      - name: ${device}
        address: ["10.64.12.34/32"]
        publicKey: ${own.publicKey}
        privateKeyFile: "${device}.key"
        dns: ["10.64.0.1"]
        peer: { publicKey: ${peer}, endpoint: "localhost:51830" }
    egress:
      - { name: vpn, from: [files], via: ${device}, masquerade: true, health: { interval: 0.2, downAfter: 2 } }
`,
    );
  });
  afterAll(async () => {
    await watch?.stop();
    await stopWireguardGoByName([device]);
    await ns?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const args = () => [
    path.join(dir, "policy.yaml"),
    "--site",
    "home",
    "--netns",
    ns.name,
    "--state-dir",
    path.join(dir, "state"),
  ];

  it("is resolved at apply, and again when the path goes down", async () => {
    const apply = await execa(process.execPath, ["bin/netpol.js", "apply", ...args()], {
      reject: false,
    });
    expect(apply.stderr).toBe("");
    expect(await endpoints()).toMatch(LOCAL);
    // The address wg found goes stale (the provider moved its server).
    await ns.exec(["wg", "set", device, "peer", peer, "endpoint", "192.0.2.99:1"]);
    watch = startWatch(args());
    // Nothing answers at the provider's resolver: the path goes down, the name is looked up.
    await watch.waitFor((e) => e.event === "path" && e.path === device && e.state === "down");
    const again = await eventually(endpoints, (e) => LOCAL.test(e ?? ""), 5000);
    expect(again).toMatch(LOCAL);
  }, 60_000);
});
