import { NetpolError } from "../errors.js";
import { type Cidr, defaultRoute, formatCidr, parseAddress, parseCidr } from "../net/cidr.js";
import { wireguardKeyProblem } from "../net/names.js";
import { type HostPort, hostPort } from "./fields.js";
import type { Address } from "./intent.js";

/**
 * A commercial provider's wg-quick file (Mullvad, Proton and the like), read for
 * `netpol import-provider`: one [Interface] with this end's key, addresses and resolvers, one
 * [Peer] with the provider's key and endpoint. Pure: the command reads and writes the files.
 */
export interface ProviderConf {
  readonly privateKey: string;
  readonly addresses: readonly Cidr[];
  /** The conf's DNS addresses; search domains in it are left to the hosts. */
  readonly dns: readonly Address[];
  readonly mtu?: number;
  readonly peer: {
    readonly publicKey: string;
    readonly presharedKey?: string;
    readonly endpoint: HostPort;
    readonly keepalive?: number;
  };
  /** Keys wg-quick acts on that netpol does not (hooks, Table, FwMark…), with their lines. */
  readonly ignored: readonly { readonly line: number; readonly key: string }[];
}

/** wg-quick's own keys: netpol does their work itself (routes, marks, the kill switch) or none. */
const IGNORED = new Set([
  "listenport",
  "fwmark",
  "table",
  "preup",
  "postup",
  "predown",
  "postdown",
  "saveconfig",
]);

const KEYS = {
  interface: new Set(["privatekey", "address", "dns", "mtu", ...IGNORED]),
  peer: new Set(["publickey", "presharedkey", "allowedips", "endpoint", "persistentkeepalive"]),
} as const;

type Section = keyof typeof KEYS;

/** Raises the one error a bad file gets: the file, the line, what is wrong and what to do. */
function fail(file: string, line: number, message: string): never {
  throw new NetpolError("NETPOL_E_PROVIDER_CONF", `${file}:${line}: ${message}`);
}

interface Entry {
  readonly line: number;
  /** As written (wg reads keys in any case). */
  readonly key: string;
  readonly value: string;
}

/** The file's `key = value` lines by section, keys lower-cased as wg reads them. */
function entriesOf(text: string, file: string) {
  const sections: Record<Section, Map<string, Entry[]>> = {
    interface: new Map(),
    peer: new Map(),
  };
  const seen: Record<Section, number | undefined> = { interface: undefined, peer: undefined };
  let section: Section | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const content = raw.replace(/#.*$/, "").trim();
    if (content === "") return;
    const header = /^\[(\w+)\]$/.exec(content);
    if (header) {
      const name = header[1]?.toLowerCase();
      if (name !== "interface" && name !== "peer")
        fail(file, line, `unknown section ${content}; a wg-quick file has [Interface] and [Peer]`);
      if (seen[name] !== undefined)
        fail(
          file,
          line,
          name === "peer"
            ? "a second [Peer]: a provider's file has one peer; import one server's file per path"
            : "a second [Interface]; keep one",
        );
      seen[name] = line;
      section = name;
      return;
    }
    const eq = content.indexOf("=");
    if (eq < 0) fail(file, line, `expected \`Key = value\`, found ${JSON.stringify(content)}`);
    const key = content.slice(0, eq).trim();
    if (section === undefined) fail(file, line, `${key} comes before [Interface]`);
    if (!KEYS[section].has(key.toLowerCase()))
      fail(file, line, `${key} is not a key of [${section === "peer" ? "Peer" : "Interface"}]`);
    const list = sections[section].get(key.toLowerCase()) ?? [];
    list.push({ line, key, value: content.slice(eq + 1).trim() });
    sections[section].set(key.toLowerCase(), list);
  });
  if (seen.interface === undefined)
    fail(file, 1, "no [Interface] section; is this a wg-quick file?");
  if (seen.peer === undefined)
    fail(file, seen.interface, "no [Peer] section: the provider's server");
  return { sections, at: seen as Record<Section, number> };
}

/** Reads a provider's wg-quick file; every problem is one NETPOL_E_PROVIDER_CONF naming its line. */
export function parseProviderConf(text: string, file: string): ProviderConf {
  const { sections, at } = entriesOf(text, file);
  const one = (s: Section, key: string, name: string): Entry | undefined => {
    const list = sections[s].get(key) ?? [];
    if (list.length > 1) fail(file, list[1]?.line ?? at[s], `${name} is given twice; keep one`);
    return list[0];
  };
  const required = (s: Section, key: string, name: string): Entry => {
    const e = one(s, key, name);
    if (!e) fail(file, at[s], `[${s === "peer" ? "Peer" : "Interface"}] has no ${name}`);
    return e;
  };
  const key = (e: Entry, name: string) => {
    const problem = wireguardKeyProblem(e.value);
    if (problem) fail(file, e.line, `${name}: ${problem}`);
    return e.value;
  };
  // Address, DNS and AllowedIPs may be comma lists and may repeat, as wg-quick allows.
  const items = (s: Section, k: string) =>
    (sections[s].get(k) ?? []).flatMap((e) =>
      e.value
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "")
        .map((value) => ({ line: e.line, key: e.key, value })),
    );
  const number = (e: Entry | undefined, name: string, min: number, max: number) => {
    if (!e) return undefined;
    const n = Number(e.value);
    if (!Number.isInteger(n) || n < min || n > max)
      fail(file, e.line, `${name} must be a whole number from ${min} to ${max}`);
    return n;
  };

  const privateKey = key(required("interface", "privatekey", "PrivateKey"), "PrivateKey");
  const addresses = items("interface", "address").map(({ line, value }) => {
    const parsed = parseCidr(
      value.includes("/") ? value : `${value}/${value.includes(":") ? 128 : 32}`,
    );
    if (!parsed.ok) fail(file, line, `Address ${value}: ${parsed.error}`);
    return parsed.value;
  });
  if (addresses.length === 0) fail(file, at.interface, "[Interface] has no Address");
  const dns = items("interface", "dns").flatMap(({ value }) => {
    const parsed = parseAddress(value);
    return parsed.ok ? [parsed.value] : [];
  });
  const mtu = number(one("interface", "mtu", "MTU"), "MTU", 1280, 9000);

  const publicKey = key(required("peer", "publickey", "PublicKey"), "PublicKey");
  const psk = one("peer", "presharedkey", "PresharedKey");
  const endpointEntry = required("peer", "endpoint", "Endpoint");
  const endpoint = hostPort.safeParse(endpointEntry.value);
  if (!endpoint.success)
    fail(
      file,
      endpointEntry.line,
      endpoint.error.issues[0]?.message ?? "Endpoint is not host:port",
    );
  const allowed = items("peer", "allowedips");
  for (const { line, value } of allowed) {
    const parsed = parseCidr(value);
    if (!parsed.ok) fail(file, line, `AllowedIPs ${value}: ${parsed.error}`);
  }
  const full = new Set([formatCidr(defaultRoute(4)), formatCidr(defaultRoute(6))]);
  if (!allowed.some(({ value }) => full.has(value)))
    fail(
      file,
      allowed[0]?.line ?? at.peer,
      "AllowedIPs has neither 0.0.0.0/0 nor ::/0: this is not a file for a whole-traffic VPN, which an egress path needs",
    );
  const keepalive = number(
    one("peer", "persistentkeepalive", "PersistentKeepalive"),
    "PersistentKeepalive",
    0,
    65535,
  );
  const ignored = [...sections.interface]
    .filter(([k]) => IGNORED.has(k))
    .flatMap(([, list]) => list.map((e) => ({ line: e.line, key: e.key })))
    .sort((a, b) => a.line - b.line);
  return {
    privateKey,
    addresses,
    dns,
    ...(mtu !== undefined ? { mtu } : {}),
    peer: {
      publicKey,
      ...(psk ? { presharedKey: key(psk, "PresharedKey") } : {}),
      endpoint: endpoint.data,
      ...(keepalive !== undefined ? { keepalive } : {}),
    },
    ignored,
  };
}
