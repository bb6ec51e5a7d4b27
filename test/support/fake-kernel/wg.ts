import { readFileSync } from "node:fs";
import { type Cidr, formatCidr, networkOf, parseCidr } from "../../../src/net/cidr.js";
import { wireguardKeyProblem } from "../../../src/net/names.js";
import { publicKeyOf } from "../../../src/system/keys.js";
import { createLink } from "./links.js";
import type { FakeWgDevice, FakeWgPeer, KernelState, ToolResult } from "./state.js";

/**
 * wg(8) and wireguard-go: `wg setconf|syncconf NAME FILE`, `wg showconf NAME`,
 * `wg show all|NAME dump`. Handshakes and byte counts stay 0 unless a test sets them: no
 * packets cross a fake kernel.
 */

interface ParsedConf {
  privateKey?: string;
  listenPort?: number;
  fwmark?: number;
  peers: (Partial<Omit<FakeWgPeer, "publicKey" | "allowedIps">> & {
    publicKey: string;
    allowedIps: Cidr[];
  })[];
}

class ConfError extends Error {}

function readKey(value: string): string {
  if (wireguardKeyProblem(value) !== undefined)
    throw new ConfError(`Key is not the correct length or format: \`${value}'`);
  return value;
}

function parseConf(text: string): ParsedConf {
  const conf: ParsedConf = { peers: [] };
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    if (/^\[\w+\]$/.test(line)) {
      section = line.toLowerCase();
      if (section === "[peer]") conf.peers.push({ publicKey: "", allowedIps: [] });
      continue;
    }
    const eq = line.indexOf("=");
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = line.slice(eq + 1).trim();
    const peer = conf.peers.at(-1);
    if (section === "[interface]" && key === "privatekey") conf.privateKey = readKey(value);
    else if (section === "[interface]" && key === "listenport") conf.listenPort = Number(value);
    else if (section === "[interface]" && key === "fwmark") conf.fwmark = Number(value);
    else if (section === "[peer]" && peer && key === "publickey") peer.publicKey = readKey(value);
    else if (section === "[peer]" && peer && key === "presharedkey")
      peer.presharedKey = readKey(value);
    else if (section === "[peer]" && peer && key === "endpoint") peer.endpoint = value;
    else if (section === "[peer]" && peer && key === "persistentkeepalive")
      peer.keepalive = value === "off" ? 0 : Number(value);
    else if (section === "[peer]" && peer && key === "allowedips") {
      for (const item of value
        .split(",")
        .map((v) => v.trim())
        .filter(Boolean)) {
        const cidr = parseCidr(item);
        if (!cidr.ok) throw new ConfError(`Unable to parse IP address: \`${item}'`);
        peer.allowedIps.push(networkOf(cidr.value));
      }
    } else throw new ConfError(`Line unrecognized: \`${line}'`);
  }
  return conf;
}

/** WireGuard gives a port of its choosing when none is set; the fake's is fixed per name. */
function chosenPort(name: string): number {
  return 40000 + [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 20000, 0);
}

function configure(name: string, dev: FakeWgDevice, conf: ParsedConf, replacePeers: boolean): void {
  if (conf.privateKey !== undefined) dev.privateKey = conf.privateKey;
  if (conf.listenPort !== undefined) dev.listenPort = conf.listenPort;
  else if (dev.listenPort === 0) dev.listenPort = chosenPort(name);
  if (conf.fwmark !== undefined) dev.fwmark = conf.fwmark;
  const kept = replacePeers
    ? []
    : dev.peers.filter((p) => conf.peers.some((c) => c.publicKey === p.publicKey));
  dev.peers = conf.peers.map((c) => {
    const old = kept.find((p) => p.publicKey === c.publicKey);
    const peer: FakeWgPeer = {
      publicKey: c.publicKey,
      allowedIps: c.allowedIps,
      latestHandshake: old?.latestHandshake ?? 0,
      rxBytes: old?.rxBytes ?? 0,
      txBytes: old?.txBytes ?? 0,
    };
    const endpoint = c.endpoint ?? old?.endpoint;
    const keepalive = c.keepalive ?? old?.keepalive;
    const psk = c.presharedKey ?? old?.presharedKey;
    if (endpoint !== undefined) peer.endpoint = endpoint;
    if (keepalive !== undefined && keepalive > 0) peer.keepalive = keepalive;
    if (psk !== undefined) peer.presharedKey = psk;
    return peer;
  });
  // An allowed IP belongs to one peer: a later peer claiming it takes it.
  for (const [i, peer] of dev.peers.entries()) {
    const later = dev.peers.slice(i + 1).flatMap((p) => p.allowedIps.map(formatCidr));
    peer.allowedIps = peer.allowedIps.filter((c) => !later.includes(formatCidr(c)));
  }
}

function showconf(dev: FakeWgDevice): string {
  const lines = ["[Interface]", `ListenPort = ${dev.listenPort}`];
  if (dev.fwmark) lines.push(`FwMark = 0x${dev.fwmark.toString(16)}`);
  if (dev.privateKey) lines.push(`PrivateKey = ${dev.privateKey}`);
  for (const p of dev.peers) {
    lines.push("", "[Peer]", `PublicKey = ${p.publicKey}`);
    if (p.presharedKey) lines.push(`PresharedKey = ${p.presharedKey}`);
    if (p.allowedIps.length > 0)
      lines.push(`AllowedIPs = ${p.allowedIps.map(formatCidr).join(", ")}`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.keepalive) lines.push(`PersistentKeepalive = ${p.keepalive}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Each private key's public one, derived once: a dump per read is the fleet bench's hot path. */
const publicKeys = new Map<string, string>();
const publicOf = (privateKey: string) => {
  const known = publicKeys.get(privateKey);
  if (known !== undefined) return known;
  const key = publicKeyOf(privateKey);
  publicKeys.set(privateKey, key);
  return key;
};

/** `wg show all dump` heads each line with the interface's name; `wg show NAME dump` does not. */
function dump(name: string | undefined, dev: FakeWgDevice): string {
  const none = (v: string | undefined) => v ?? "(none)";
  const named = name === undefined ? [] : [name];
  const head = [
    ...named,
    none(dev.privateKey),
    dev.privateKey ? publicOf(dev.privateKey) : "(none)",
    dev.listenPort,
    dev.fwmark ? `0x${dev.fwmark.toString(16)}` : "off",
  ];
  const peers = dev.peers.map((p) => [
    ...named,
    p.publicKey,
    none(p.presharedKey),
    none(p.endpoint),
    p.allowedIps.length > 0 ? p.allowedIps.map(formatCidr).join(",") : "(none)",
    p.latestHandshake,
    p.rxBytes,
    p.txBytes,
    p.keepalive ?? "off",
  ]);
  return [head, ...peers].map((f) => `${f.join("\t")}\n`).join("");
}

export function wg(state: KernelState, args: readonly string[]): ToolResult {
  const ok = (stdout: string): ToolResult => ({ stdout, stderr: "", exitCode: 0 });
  const fail = (stderr: string): ToolResult => ({ stdout: "", stderr: `${stderr}\n`, exitCode: 1 });
  const [verb, name = "", file] = args;
  const dev = state.wireguard.get(name);
  if (verb === "show" && args[2] === "dump") {
    if (name === "all")
      return ok(
        [...state.wireguard]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([n, d]) => dump(n, d))
          .join(""),
      );
    return dev
      ? ok(dump(undefined, dev))
      : fail("Unable to access interface: Protocol not supported");
  }
  if (verb === "showconf")
    return dev ? ok(showconf(dev)) : fail("Unable to access interface: Protocol not supported");
  if (verb === "setconf" || verb === "syncconf") {
    if (!dev) return fail("Unable to modify interface: Protocol not supported");
    let conf: ParsedConf;
    try {
      conf = parseConf(readFileSync(file ?? "", "utf8"));
    } catch (err) {
      if (err instanceof ConfError) return fail(`${err.message}\nConfiguration parsing error`);
      return fail(`fopen: ${(err as Error).message}`);
    }
    configure(name, dev, conf, verb === "setconf");
    return ok("");
  }
  return fail(`fake kernel: \`wg ${args.join(" ")}\` is not emulated`);
}

/** `wireguard-go NAME`: a tun device with the daemon behind it, so it has carrier. */
export function wireguardGo(state: KernelState, args: readonly string[]): ToolResult {
  const name = args.filter((a) => !a.startsWith("-"))[0] ?? "";
  if (state.links.some((l) => l.name === name))
    return {
      stdout: "",
      stderr: `ERROR: Failed to create TUN device: device or resource busy\n`,
      exitCode: 1,
    };
  const link = createLink(state, { name, kind: "tun", mtu: 1420 });
  link.attached = true;
  state.wireguard.set(name, { listenPort: 0, peers: [] });
  return { stdout: "", stderr: "", exitCode: 0 };
}
