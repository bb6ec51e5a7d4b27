import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { generateKeyPair, writePrivateKey } from "../system/keys.js";
import { createRunner, type Runner } from "../system/runner.js";
import { withSecretFile } from "../system/secret-file.js";
import { startCaddy } from "./caddy.js";
import { killAndWait, startInNetns, startWireguardGo, stopWireguardGoByName } from "./processes.js";
import {
  ADDR,
  GATEWAYS,
  HMA_PORT,
  type LabNames,
  labNames,
  ROLES,
  type Role,
  UDP_PORT,
  WG_PORT,
  WHOAMI_PORT,
  WIRES,
} from "./topology.js";

export interface Lab {
  readonly names: LabNames;
  readonly dir: string;
  readonly run: (role: Role) => Runner;
  /** Public keys of netpol's tunnel ends; private keys are files in `dir/keys`. */
  readonly keys: { readonly home: string; readonly vps: string };
}

interface LabFile {
  prefix: string;
  pids: number[];
  hmaHomePid: number;
  caddyPid: number;
  hmaKey: { home: string; vps: string };
  keys: { home: string; vps: string };
}

const labFile = (dir: string) => path.join(dir, "lab.json");

const UDP_WHOAMI = `const s=require("dgram").createSocket("udp4");s.on("message",(m,r)=>s.send(r.address+"\\n",r.port,r.address));s.bind(${UDP_PORT})`;

// Behind a reverse proxy it also says whom the proxy forwarded for (X-Forwarded-For).
const WHOAMI = `require("http").createServer((q,r)=>{const f=q.headers["x-forwarded-for"];r.end(q.socket.remoteAddress.replace(/^::ffff:/,"")+(f?" for "+f:"")+"\\n")}).listen(${WHOAMI_PORT})`;

async function provider(
  lab: Lab,
  role: "home" | "vpn",
  own: string,
  peerPublic: string,
): Promise<number> {
  const ns = lab.names.ns(role);
  const dev = role === "vpn" ? lab.names.hmaFar : lab.names.hma;
  const pid = await startWireguardGo(ns, dev);
  const conf =
    role === "vpn"
      ? `[Interface]\nPrivateKey = ${own}\nListenPort = ${HMA_PORT}\n[Peer]\nPublicKey = ${peerPublic}\nAllowedIPs = 10.66.0.2/32, 192.168.6.0/24\n`
      : `[Interface]\nPrivateKey = ${own}\n[Peer]\nPublicKey = ${peerPublic}\nAllowedIPs = 0.0.0.0/0\nEndpoint = ${ADDR.vpnExit}:${HMA_PORT}\nPersistentKeepalive = 5\n`;
  const r = lab.run(role);
  await withSecretFile(path.join(lab.dir, "secrets"), conf, (file) =>
    r.run("wg", ["setconf", dev, file]),
  );
  // Like OpenVPN with route-noexec: an address and nothing else, no routes.
  const address = role === "vpn" ? ADDR.hmaVpn : ADDR.hmaHome;
  await r.run("ip", ["-batch", "-"], {
    input: `address add ${address} dev ${dev}\nlink set dev ${dev} up\n`,
  });
  return pid;
}

/** The provider tunnel on home goes away, as when OpenVPN dies: the device disappears. */
export async function providerDown(lab: Lab): Promise<void> {
  const file = JSON.parse(await readFile(labFile(lab.dir), "utf8")) as LabFile;
  await lab.run("home").run("ip", ["link", "delete", "dev", lab.names.hma]);
  // Gone before the next one of that name starts: on its way out it removes its control socket.
  await killAndWait(file.hmaHomePid);
}

export async function providerUp(lab: Lab): Promise<void> {
  const file = JSON.parse(await readFile(labFile(lab.dir), "utf8")) as LabFile;
  const vpnPublic = JSON.parse(
    await readFile(path.join(lab.dir, "hma-vpn.pub.json"), "utf8"),
  ) as string;
  file.hmaHomePid = await provider(lab, "home", file.hmaKey.home, vpnPublic);
  file.pids.push(file.hmaHomePid);
  await writeFile(labFile(lab.dir), JSON.stringify(file), { mode: 0o600 });
}

function labOf(prefix: string, dir: string, keys: { home: string; vps: string }): Lab {
  const names = labNames(prefix);
  return { names, dir, keys, run: (role) => createRunner(names.ns(role)) };
}

/** Builds the lab. Only namespaces it creates are touched; the root namespace never is. */
export async function labUp(prefix: string, dir: string): Promise<Lab> {
  await mkdir(path.join(dir, "keys"), { recursive: true, mode: 0o700 });
  const home = generateKeyPair();
  const vps = generateKeyPair();
  await writePrivateKey(path.join(dir, "keys", "home.key"), home.privateKey);
  await writePrivateKey(path.join(dir, "keys", "vps.key"), vps.privateKey);
  const lab = labOf(prefix, dir, { home: home.publicKey, vps: vps.publicKey });
  const pids: number[] = [];
  const save = (extra: Partial<LabFile>) =>
    writeFile(labFile(dir), JSON.stringify({ prefix, pids, keys: lab.keys, ...extra }), {
      mode: 0o600,
    });
  await save({});

  for (const role of ROLES) await execa("ip", ["netns", "add", lab.names.ns(role)]);
  for (const w of WIRES) {
    const [ra, da] = w.a;
    const [rb, db] = w.b;
    await execa("ip", [
      "-n",
      lab.names.ns(ra),
      "link",
      "add",
      da,
      "type",
      "veth",
      "peer",
      "name",
      db,
      "netns",
      lab.names.ns(rb),
    ]);
  }
  for (const role of ROLES) {
    const lines = ["link set dev lo up"];
    for (const w of WIRES) {
      for (const [r, dev, addr] of [w.a, w.b]) {
        if (r !== role) continue;
        lines.push(`link set dev ${dev} up`);
        if (addr) lines.push(`address add ${addr} dev ${dev}`);
      }
    }
    const gw = GATEWAYS[role];
    if (gw && role !== "vl6" && role !== "vl7") lines.push(`route add default via ${gw}`);
    await lab.run(role).run("ip", ["-batch", "-"], { input: `${lines.join("\n")}\n` });
  }
  // The VLAN host's gateway address appears only once netpol adds it: route via the device.
  for (const role of ["vl6", "vl7"] as const)
    await lab
      .run(role)
      .run("ip", ["route", "add", "default", "via", GATEWAYS[role] ?? "", "dev", "eth0", "onlink"]);
  for (const role of ["home", "isp", "vpn", "vps"] as const) {
    await lab.run(role).run("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
  }
  // State that is not netpol's: the distro's NAT for the LAN on home, the provider's NAT.
  await lab.run("home").run("nft", ["-f", "-"], {
    input:
      'table ip labnat {\n chain post { type nat hook postrouting priority srcnat; oifname "wan" ip saddr 192.168.1.0/24 masquerade; }\n}\n',
  });
  await lab.run("vpn").run("nft", ["-f", "-"], {
    input:
      'table ip labnat {\n chain post { type nat hook postrouting priority srcnat; oifname "wan" masquerade; }\n}\n',
  });

  const hmaHome = generateKeyPair();
  const hmaVpn = generateKeyPair();
  await writeFile(path.join(dir, "hma-vpn.pub.json"), JSON.stringify(hmaVpn.publicKey));
  pids.push(await provider(lab, "vpn", hmaVpn.privateKey, hmaHome.publicKey));
  const hmaHomePid = await provider(lab, "home", hmaHome.privateKey, hmaVpn.publicKey);
  pids.push(hmaHomePid);
  // An internet host, and a home server to publish: both answer with the client's address.
  pids.push(startInNetns(lab.names.ns("www"), [process.execPath, "-e", WHOAMI]));
  pids.push(startInNetns(lab.names.ns("lan1"), [process.execPath, "-e", WHOAMI]));
  pids.push(startInNetns(lab.names.ns("lan1"), [process.execPath, "-e", UDP_WHOAMI]));
  // The VPS's Caddy, already serving a site of its own, as on a real VPS.
  const caddyPid = await startCaddy(lab.names.ns("vps"), dir);
  pids.push(caddyPid);
  await save({
    hmaHomePid,
    caddyPid,
    hmaKey: { home: hmaHome.privateKey, vps: hmaVpn.privateKey },
  });
  return lab;
}

/** Removes everything a lab made: its processes by PID, its WireGuard interfaces, its namespaces. */
export async function labDown(dir: string): Promise<boolean> {
  const text = await readFile(labFile(dir), "utf8").catch(() => undefined);
  if (text === undefined) return false;
  const file = JSON.parse(text) as LabFile;
  const names = labNames(file.prefix);
  await Promise.all(file.pids.map((pid) => killAndWait(pid)));
  await stopWireguardGoByName([names.hma, names.hmaFar, names.wgHome, names.wgVps]);
  for (const role of ROLES)
    await execa("ip", ["netns", "delete", names.ns(role)], { reject: false });
  await rm(dir, { recursive: true, force: true });
  return true;
}

export async function openLab(dir: string): Promise<Lab | undefined> {
  const text = await readFile(labFile(dir), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const file = JSON.parse(text) as LabFile;
  return labOf(file.prefix, dir, file.keys);
}

/**
 * The home's ISP, like most without a static address, lets no connection in: new connections
 * towards the home are dropped (counted), so whatever works was dialed out from the home.
 */
export async function dialOutOnly(lab: Lab): Promise<void> {
  await lab.run("isp").run("nft", ["-f", "-"], {
    input:
      'table inet labisp {\n counter inbound {}\n chain inbound_guard { type filter hook forward priority 0; oifname "home" ct state new counter name inbound drop; }\n}\n',
  });
}

/** New connections towards the home the ISP dropped. */
export async function inboundDropped(lab: Lab): Promise<number> {
  const r = await lab.run("isp").run("nft", ["list", "counter", "inet", "labisp", "inbound"]);
  return Number(/packets (\d+)/.exec(r.stdout)?.[1] ?? Number.NaN);
}

/** Kills the VPS's Caddy and starts it again, empty of what was added through its API. */
export async function restartCaddy(lab: Lab): Promise<void> {
  const file = JSON.parse(await readFile(labFile(lab.dir), "utf8")) as LabFile;
  const old = file.caddyPid;
  await killAndWait(old);
  file.caddyPid = await startCaddy(lab.names.ns("vps"), lab.dir);
  // Replaced, not added: a dead PID may be reused by some other process.
  file.pids = file.pids.map((pid) => (pid === old ? file.caddyPid : pid));
  await writeFile(labFile(lab.dir), JSON.stringify(file), { mode: 0o600 });
}

/** Records a process the lab must stop on the way down. */
export async function adoptPid(dir: string, pid: number): Promise<void> {
  const file = JSON.parse(await readFile(labFile(dir), "utf8")) as LabFile;
  file.pids.push(pid);
  await writeFile(labFile(dir), JSON.stringify(file), { mode: 0o600 });
}

/**
 * Drops a tunnel's UDP at the ISP, both ways, while its devices stay up: a provider (or VPS)
 * that stops answering, as a dead server or a blocked path looks from the home.
 */
export async function blackHole(lab: Lab, which: "provider" | "vps", on: boolean): Promise<void> {
  const [address, port] = which === "provider" ? [ADDR.vpnExit, HMA_PORT] : [ADDR.vps, WG_PORT];
  const table = `labblack${which}`;
  const input = on
    ? `table inet ${table} {\n chain black { type filter hook forward priority -200; ip daddr ${address} udp dport ${port} drop; ip saddr ${address} udp sport ${port} drop; }\n}\n`
    : `table inet ${table} {}\ndelete table inet ${table}\n`;
  await lab.run("isp").run("nft", ["-f", "-"], { input });
}
