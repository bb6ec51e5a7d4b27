import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { BenchNs } from "./namespace.js";

/**
 * The bare tools on netpol's own rendered files (`netpol render`): what a hand-written script
 * that already knows the answer would run. Each returns seconds.
 */

export interface Rendered {
  readonly v4: string[];
  readonly v6: string[];
  readonly nft: string;
  readonly sysctl: string;
  readonly wireguard: ReadonlyMap<string, string>;
}

const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

export async function readRendered(dir: string, wgNames: readonly string[]): Promise<Rendered> {
  const read = (f: string) =>
    existsSync(path.join(dir, f)) ? readFile(path.join(dir, f), "utf8") : Promise.resolve("");
  const wireguard = new Map<string, string>();
  for (const wg of wgNames) wireguard.set(wg, await read(`wireguard/${wg}.conf`));
  // This kernel has no WireGuard: wireguard-go makes the device instead of `ip link add`.
  const kernelOnly = (l: string) => !/^link add name \S+ type wireguard$/.test(l);
  return {
    v4: lines(await read("ip.batch")).filter(kernelOnly),
    v6: lines(await read("ip6.batch")),
    nft: await read("nftables.nft"),
    sysctl: await read("sysctl.conf"),
    wireguard,
  };
}

const batch = (l: readonly string[]) => `${l.join("\n")}\n`;

async function timed(work: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await work();
  return (performance.now() - t0) / 1000;
}

/** wireguard-go (it daemonizes once its device is up), `ip -batch`, `sysctl -p`, `nft -f`, `wg setconf`. */
export function coldFloor(ns: BenchNs, r: Rendered, confDir: string): Promise<number> {
  return timed(async () => {
    for (const wg of r.wireguard.keys()) await ns.run(["wireguard-go", wg]);
    await ns.run(["ip", "-batch", "-"], batch(r.v4));
    if (r.v6.length > 0) await ns.run(["ip", "-6", "-batch", "-"], batch(r.v6));
    if (r.sysctl !== "") await ns.run(["sysctl", "-q", "-p", path.join(confDir, "sysctl.conf")]);
    await ns.run(["nft", "-f", "-"], r.nft);
    for (const wg of r.wireguard.keys())
      await ns.run(["wg", "setconf", wg, path.join(confDir, "wireguard", `${wg}.conf`)]);
  });
}

/** `ip -batch` line for taking back a line that added something. */
const undo = (line: string) => line.replace(/^(\S+) add /, "$1 del ");

/**
 * From `from` to `to` with the bare tools: the live read netpol also needs (links, addresses,
 * routes and rules of both families, netpol's nft table, `wg show`), then only the lines that
 * differ, the nft file if it differs, `wg syncconf` if the config differs.
 */
export function changeFloor(
  ns: BenchNs,
  from: Rendered,
  to: Rendered,
  toDir: string,
): Promise<number> {
  const delta = (a: string[], b: string[]) => {
    const had = new Set(a);
    const has = new Set(b);
    return [...a.filter((l) => !has.has(l)).map(undo), ...b.filter((l) => !had.has(l))];
  };
  const v4 = delta(from.v4, to.v4);
  const v6 = delta(from.v6, to.v6);
  return timed(async () => {
    await ns.run(["ip", "-d", "-json", "-batch", "-"], "link show\naddress show\n");
    for (const f of ["-4", "-6"])
      await ns.run(["ip", "-N", f, "-json", "-batch", "-"], "route show table all\nrule show\n");
    await ns.run(["nft", "list", "table", "inet", "netpol"]);
    for (const wg of to.wireguard.keys()) await ns.run(["wg", "show", wg, "dump"]);
    if (v4.length > 0) await ns.run(["ip", "-batch", "-"], batch(v4));
    if (v6.length > 0) await ns.run(["ip", "-6", "-batch", "-"], batch(v6));
    if (from.nft !== to.nft) await ns.run(["nft", "-f", "-"], to.nft);
    for (const [wg, conf] of to.wireguard) {
      if (from.wireguard.get(wg) !== conf)
        await ns.run(["wg", "syncconf", wg, path.join(toDir, "wireguard", `${wg}.conf`)]);
    }
  });
}

/**
 * The rules and set or map elements of a rendered nft file, with the chain or set each goes
 * into, and the file without them (its tables, chains and empty sets).
 */
function splitNft(text: string): {
  skeleton: string;
  rules: [string, string][];
  elements: [string, string][];
} {
  const rules: [string, string][] = [];
  const elements: [string, string][] = [];
  const kept: string[] = [];
  let chain: string | undefined;
  let set: string | undefined;
  let inElements = false;
  for (const line of text.split("\n")) {
    const t = line.trim();
    const opens = /^(chain|set|map) (\S+) \{$/.exec(t);
    if (inElements) {
      if (t === "}") inElements = false;
      else for (const e of t.split(/,\s*/)) if (e !== "") elements.push([set ?? "", e]);
      continue;
    }
    if (opens?.[1] === "chain") chain = opens[2];
    else if (opens) set = opens[2];
    else if (t === "}") [chain, set] = [undefined, undefined];
    else if (set !== undefined && t === "elements = {") {
      inElements = true;
      continue;
    } else if (chain !== undefined && t !== "" && !t.startsWith("type ")) {
      rules.push([chain, t]);
      continue;
    }
    kept.push(line);
  }
  return { skeleton: kept.join("\n"), rules, elements };
}

/** A wg config's [Interface] part, and each [Peer] as `wg set` arguments. */
function splitWg(conf: string): { iface: string; peers: string[][] } {
  const [iface = "", ...sections] = conf.split(/^\[Peer\]$/m);
  const words: Record<string, string> = {
    PublicKey: "peer",
    AllowedIPs: "allowed-ips",
    Endpoint: "endpoint",
    PersistentKeepalive: "persistent-keepalive",
  };
  const peers = sections.map((s) =>
    s.split("\n").flatMap((line) => {
      const m = /^(\w+)\s*=\s*(.+)$/.exec(line.trim());
      const word = m?.[1] !== undefined ? words[m[1]] : undefined;
      return word && m?.[2] ? [word, m[2].replace(/\s/g, "")] : [];
    }),
  );
  return { iface, peers };
}

export interface PerObject {
  readonly seconds: number;
  readonly objects: number;
  readonly sampled: number;
}

/**
 * One process per kernel object, as an rc.local script runs them: `ip ...` per line; the nft
 * table with its chains and empty sets in one file, then `nft add element` per set or map
 * element and `nft add rule` per rule; `wg set` per peer. With `sample` below the object count,
 * the first objects of each kind run and the time is scaled up linearly.
 */
export async function perObject(
  ns: BenchNs,
  r: Rendered,
  confDir: string,
  sample: number,
): Promise<PerObject> {
  const nft = splitNft(r.nft);
  const wg = [...r.wireguard].map(([name, conf]) => ({ name, ...splitWg(conf) }));
  const peers = wg.flatMap((w) => w.peers.map((p) => [w.name, p] as const));
  const objects = r.v4.length + r.v6.length + nft.rules.length + nft.elements.length + peers.length;
  const share = Math.min(1, sample / objects);
  const first = <T>(xs: readonly T[]) => xs.slice(0, Math.ceil(xs.length * share));
  const v4 = first(r.v4);
  const v6 = first(r.v6);
  const rules = first(nft.rules);
  const elements = first(nft.elements);
  const somePeers = first(peers);
  const sampled = v4.length + v6.length + rules.length + elements.length + somePeers.length;
  const ifaceConf = (name: string) => path.join(confDir, "wireguard", `${name}.iface.conf`);
  for (const w of wg) await writeFile(ifaceConf(w.name), w.iface, { mode: 0o600 });
  const seconds = await timed(async () => {
    for (const w of wg) await ns.run(["wireguard-go", w.name]);
    for (const l of v4) await ns.run(["ip", ...l.split(" ")]);
    for (const l of v6) await ns.run(["ip", "-6", ...l.split(" ")]);
    await ns.run(["nft", "-f", "-"], nft.skeleton);
    for (const [set, element] of elements)
      await ns.run(["nft", "add", "element", "inet", "netpol", set, `{ ${element} }`]);
    for (const [chain, rule] of rules)
      await ns.run(["nft", "add", "rule", "inet", "netpol", chain, rule]);
    for (const w of wg) await ns.run(["wg", "setconf", w.name, ifaceConf(w.name)]);
    for (const [name, peer] of somePeers) await ns.run(["wg", "set", name, ...peer]);
  });
  return { seconds: (seconds * objects) / sampled, objects, sampled };
}
