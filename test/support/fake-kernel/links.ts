import {
  bits,
  type Cidr,
  type Family,
  formatAddress,
  networkOf,
  parseCidr,
} from "../../../src/net/cidr.js";
import {
  type FakeAddress,
  type FakeLink,
  type KernelState,
  malformed,
  PROTO,
  Refused,
  SCOPE,
  TABLE,
} from "./state.js";
import { deviceSysctls, dropDeviceSysctls } from "./sysctl.js";
import { garbage, matches, next, readU32 } from "./words.js";

/** Links and addresses, and the routes the kernel makes and removes along with them. */

const IFNAMSIZ = 15;

export function findLink(state: KernelState, name: string): FakeLink {
  const link = state.links.find((l) => l.name === name);
  if (!link) throw new Refused(`Cannot find device "${name}"`, 1);
  return link;
}

export function hasCarrier(state: KernelState, link: FakeLink): boolean {
  if (!link.up) return false;
  switch (link.kind) {
    case "veth":
      // A veth whose other end lives in another namespace: that end is taken to be up.
      return (
        link.link === undefined || (state.links.find((l) => l.name === link.link)?.up ?? false)
      );
    case "tun":
      return link.attached ?? false;
    case "vlan": {
      const parent = state.links.find((l) => l.name === link.link);
      return parent !== undefined && hasCarrier(state, parent);
    }
    case "bridge":
      return state.links.some((l) => l.master === link.name && hasCarrier(state, l));
    default:
      return true;
  }
}

/** Which kinds `ip link add … type KIND` accepts; this machine's kernel lacks vlan and wireguard. */
export interface KernelFeatures {
  readonly linkKinds: readonly string[];
}

export const THIS_MACHINE: KernelFeatures = { linkKinds: ["bridge", "veth"] };

const DEFAULT_MTU: Record<string, number> = { wireguard: 1420 };

export function createLink(
  state: KernelState,
  spec: { name: string; kind: string; mtu?: number; link?: string; vlanId?: number },
): FakeLink {
  if (Buffer.byteLength(spec.name) > IFNAMSIZ || spec.name.includes("/") || spec.name === "")
    throw malformed(`Error: argument "${spec.name}" is wrong: "name" not a valid ifname`);
  if (state.links.some((l) => l.name === spec.name))
    throw new Refused("RTNETLINK answers: File exists", 2);
  const link: FakeLink = {
    index: state.nextIndex++,
    name: spec.name,
    kind: spec.kind,
    up: false,
    mtu: spec.mtu ?? DEFAULT_MTU[spec.kind] ?? 1500,
    ...(spec.link !== undefined ? { link: spec.link } : {}),
    ...(spec.vlanId !== undefined ? { vlanId: spec.vlanId } : {}),
  };
  state.links.push(link);
  deviceSysctls(state, link.name);
  if (spec.kind === "wireguard") state.wireguard.set(spec.name, { listenPort: 0, peers: [] });
  return link;
}

function dropRoutesVia(state: KernelState, device: string, family?: Family): void {
  state.routes = state.routes.filter(
    (r) =>
      (family !== undefined && r.family !== family) ||
      (r.dev !== device && !r.nexthops?.some((n) => n.dev === device)),
  );
}

function prefixRoute(a: FakeAddress) {
  const v4 = a.cidr.family === 4;
  return {
    family: a.cidr.family,
    table: TABLE.main,
    type: "unicast" as const,
    dst: networkOf(a.cidr),
    dev: a.device,
    metric: v4 ? 0 : 256,
    protocol: PROTO.kernel,
    scope: v4 ? SCOPE.link : SCOPE.universe,
    ...(v4 ? { prefsrc: a.cidr.address } : {}),
  };
}

/** The connected route an address brings while its device is up (none for a host prefix). */
function addPrefixRoute(state: KernelState, a: FakeAddress): void {
  // lo's prefixes live in the local table, which the fake does not keep.
  if (a.cidr.prefix === bits(a.cidr.family) || a.device === "lo") return;
  const route = prefixRoute(a);
  const same = state.routes.some(
    (r) =>
      r.table === route.table &&
      r.dev === route.dev &&
      r.protocol === PROTO.kernel &&
      r.dst.family === route.dst.family &&
      r.dst.address === route.dst.address &&
      r.dst.prefix === route.dst.prefix,
  );
  if (!same) state.routes.push(route);
}

export function setUp(state: KernelState, link: FakeLink, up: boolean): void {
  if (link.up === up) return;
  link.up = up;
  if (up) {
    for (const a of state.addresses.filter((x) => x.device === link.name)) addPrefixRoute(state, a);
    return;
  }
  dropRoutesVia(state, link.name);
  // Without keep_addr_on_down, IPv6 addresses go with the link; IPv4 ones stay.
  state.addresses = state.addresses.filter((a) => a.device !== link.name || a.cidr.family === 4);
}

export function deleteLink(state: KernelState, link: FakeLink): void {
  const gone = new Set([link.name]);
  if (link.kind === "veth" && link.link) gone.add(link.link);
  for (const l of state.links)
    if (l.kind === "vlan" && l.link && gone.has(l.link)) gone.add(l.name);
  for (const name of gone) {
    dropRoutesVia(state, name);
    state.wireguard.delete(name);
    dropDeviceSysctls(state, name);
  }
  state.addresses = state.addresses.filter((a) => !gone.has(a.device));
  state.links = state.links.filter((l) => !gone.has(l.name));
  for (const l of state.links) if (l.master && gone.has(l.master)) delete l.master;
}

export function addAddress(state: KernelState, device: string, cidr: Cidr): void {
  const link = findLink(state, device);
  const v = cidr.family === 4 ? "ipv4" : "ipv6";
  if (
    state.addresses.some(
      (a) =>
        a.device === device && a.cidr.address === cidr.address && a.cidr.family === cidr.family,
    )
  )
    throw new Refused(
      `Error: ${v}: ${cidr.family === 4 ? "Address" : "address"} already assigned.`,
      2,
    );
  const address = { device, cidr };
  state.addresses.push(address);
  if (link.up) addPrefixRoute(state, address);
}

export function deleteAddress(state: KernelState, device: string, cidr: Cidr): void {
  findLink(state, device);
  const v = cidr.family === 4 ? "ipv4" : "ipv6";
  const found = state.addresses.find(
    (a) =>
      a.device === device &&
      a.cidr.family === cidr.family &&
      a.cidr.address === cidr.address &&
      a.cidr.prefix === cidr.prefix,
  );
  if (!found)
    throw new Refused(`Error: ${v}: ${cidr.family === 4 ? "Address" : "address"} not found.`, 2);
  state.addresses = state.addresses.filter((a) => a !== found);
  const kept = state.addresses.filter((a) => a.device === device && a.cidr.family === cidr.family);
  if (cidr.family === 4 && kept.length === 0) {
    // The device's last IPv4 address takes every IPv4 route through the device along.
    dropRoutesVia(state, device, 4);
    return;
  }
  const net = networkOf(cidr);
  const sameNet = (c: Cidr) => c.prefix === cidr.prefix && networkOf(c).address === net.address;
  state.routes = state.routes.filter((r) => {
    if (r.family !== cidr.family) return true;
    if (r.prefsrc === cidr.address) return false;
    const connected = r.protocol === PROTO.kernel && r.dev === device && sameNet(r.dst);
    return !connected || kept.some((a) => sameNet(a.cidr));
  });
}

export function linkCommand(
  state: KernelState,
  features: KernelFeatures,
  verb: string,
  args: readonly string[],
): void {
  if (matches(verb, "add")) linkAdd(state, features, args);
  else if (matches(verb, "set") || matches(verb, "change")) linkSet(state, args);
  else if (matches(verb, "delete")) {
    const name = args[0] === "dev" ? next(args, 0) : args[0];
    if (name === undefined) throw malformed('Not enough information: "dev" argument is required.');
    deleteLink(state, findLink(state, name));
  } else throw malformed(`Command "${verb}" is unknown, try "ip link help".`);
}

function linkAdd(state: KernelState, features: KernelFeatures, args: readonly string[]): void {
  let name: string | undefined;
  let parent: string | undefined;
  let kind: string | undefined;
  let mtu: number | undefined;
  let vlanId: number | undefined;
  let peer: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (kind === "vlan" && w === "id") vlanId = readU32(next(args, i++), "id");
    else if (kind === "veth" && w === "peer") {
      i++;
      if (args[i] === "name") i++;
      peer = args[i];
    } else if (kind !== undefined) throw garbage(w);
    else if (w === "name" || w === "dev") name = next(args, i++);
    else if (w === "link") parent = next(args, i++);
    else if (w === "mtu") mtu = readU32(next(args, i++), "mtu");
    else if (w === "type") kind = next(args, i++);
    else if (name === undefined) name = w;
    else throw garbage(w);
  }
  if (name === undefined) throw malformed('Not enough information: "dev" argument is required.');
  if (kind === undefined || !features.linkKinds.includes(kind))
    throw new Refused("Error: Unknown device type.", 2);
  if (kind === "vlan") {
    if (parent === undefined) throw new Refused("Error: link is required for vlan.", 2);
    const p = findLink(state, parent);
    if (vlanId === undefined) throw new Refused("Error: 8021q: VLAN id not specified.", 2);
    createLink(state, { name, kind, mtu: mtu ?? p.mtu, link: parent, vlanId });
    return;
  }
  if (kind === "veth") {
    const other = peer ?? `veth${state.nextIndex}`;
    if (state.links.some((l) => l.name === other))
      throw new Refused("RTNETLINK answers: File exists", 2);
    createLink(state, { name, kind, link: other, ...(mtu ? { mtu } : {}) });
    createLink(state, { name: other, kind, link: name, ...(mtu ? { mtu } : {}) });
    return;
  }
  createLink(state, { name, kind, ...(mtu ? { mtu } : {}) });
}

function linkSet(state: KernelState, args: readonly string[]): void {
  let i = 0;
  if (args[0] === "dev") i++;
  const name = args[i];
  if (name === undefined) throw malformed('Not enough information: "dev" argument is required.');
  const link = findLink(state, name);
  for (i++; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "up" || w === "down") setUp(state, link, w === "up");
    else if (w === "mtu") link.mtu = readU32(next(args, i++), "mtu");
    else if (w === "alias") {
      const text = next(args, i++);
      if (text === "") delete link.alias;
      else link.alias = text;
    } else if (w === "master") {
      const master = next(args, i++);
      if (!state.links.some((l) => l.name === master))
        throw malformed(`Error: argument "${master}" is wrong: Device does not exist\n`);
      link.master = master;
    } else if (w === "nomaster") delete link.master;
    else throw garbage(w);
  }
}

export function addressCommand(
  state: KernelState,
  family: Family | undefined,
  verb: string,
  args: readonly string[],
): void {
  const add = matches(verb, "add");
  if (!add && !matches(verb, "delete"))
    throw malformed(`Command "${verb}" is unknown, try "ip address help".`);
  let device: string | undefined;
  let cidr: Cidr | undefined;
  for (let i = 0; i < args.length; i++) {
    const w = args[i] as string;
    if (w === "dev") device = next(args, i++);
    else if (w === "nodad" || w === "noprefixroute") continue;
    else if (w === "label") i++;
    else if (cidr === undefined) {
      const text = w === "local" ? next(args, i++) : w;
      const parsed = parseCidr(text);
      if (!parsed.ok || (family !== undefined && parsed.value.family !== family))
        throw malformed(`Error: any valid prefix is expected rather than "${text}".`);
      cidr = parsed.value;
    } else throw garbage(w);
  }
  if (device === undefined || cidr === undefined)
    throw malformed('Not enough information: "dev" argument is required.');
  if (add) addAddress(state, device, cidr);
  else deleteAddress(state, device, cidr);
}

/** Creates a tun device as `ip tuntap add` does: persistent, so without carrier. */
export function tuntapCommand(state: KernelState, verb: string, args: readonly string[]): void {
  const name = args[0] === "dev" || args[0] === "name" ? args[1] : args[0];
  if (name === undefined) throw malformed('Not enough information: "dev" argument is required.');
  if (matches(verb, "add")) {
    if (state.links.some((l) => l.name === name))
      throw new Refused("ioctl(TUNSETIFF): Device or resource busy", 1);
    createLink(state, { name, kind: "tun" });
  } else if (matches(verb, "delete")) deleteLink(state, findLink(state, name));
  else throw malformed(`Command "${verb}" is unknown, try "ip tuntap help".`);
}

/** The JSON `ip link show` / `ip address show` print for one link, as far as the fake knows it. */
/** How `ip` was asked to print: -d, -N, and whether addresses go with each link. */
export interface LinkPrint {
  readonly details: boolean;
  readonly numeric: boolean;
  readonly withAddresses: boolean;
}

export function linkJson(state: KernelState, link: FakeLink, print: LinkPrint) {
  const { details, numeric, withAddresses } = print;
  const carrier = hasCarrier(state, link);
  const base =
    link.kind === undefined
      ? ["LOOPBACK"]
      : link.kind === "tun"
        ? ["POINTOPOINT", "MULTICAST", "NOARP"]
        : link.kind === "wireguard"
          ? ["POINTOPOINT", "NOARP"]
          : ["BROADCAST", "MULTICAST"];
  // A veth whose other end is down says so (M-DOWN, LOWERLAYERDOWN).
  const peerDown = link.kind === "veth" && link.link !== undefined && !carrier;
  const flags = link.up
    ? [
        ...(carrier ? [] : ["NO-CARRIER"]),
        ...base,
        "UP",
        ...(carrier ? ["LOWER_UP"] : peerDown ? ["M-DOWN"] : []),
      ]
    : base;
  const operstate =
    link.kind === undefined || (link.kind === "tun" && carrier)
      ? "UNKNOWN"
      : !link.up
        ? "DOWN"
        : carrier
          ? "UP"
          : peerDown
            ? "LOWERLAYERDOWN"
            : "DOWN";
  const here = link.link !== undefined && state.links.some((l) => l.name === link.link);
  return {
    ifindex: link.index,
    ...(here ? { link: link.link } : {}),
    ifname: link.name,
    flags,
    mtu: link.mtu,
    ...(link.master !== undefined ? { master: link.master } : {}),
    operstate,
    link_type: linkType(link, numeric),
    ...(details && link.kind !== undefined
      ? {
          linkinfo: {
            info_kind: link.kind,
            ...(link.kind === "vlan" ? { info_data: { protocol: "802.1Q", id: link.vlanId } } : {}),
          },
        }
      : {}),
    ...(link.alias !== undefined ? { ifalias: link.alias } : {}),
    ...(withAddresses
      ? {
          addr_info: state.addresses
            .filter((a) => a.device === link.name)
            .sort((a, b) => a.cidr.family - b.cidr.family)
            .map((a) => ({
              family: a.cidr.family === 4 ? "inet" : "inet6",
              local: formatAddress(a.cidr),
              prefixlen: a.cidr.prefix,
              scope: addressScope(a.cidr, numeric),
              ...(a.cidr.family === 4 ? { label: link.name } : {}),
              valid_life_time: 4294967295,
              preferred_life_time: 4294967295,
            })),
        }
      : {}),
  };
}

function addressScope(cidr: Cidr, numeric: boolean): string {
  const loopback = cidr.family === 4 ? cidr.address >> 24n === 127n : cidr.address === 1n;
  const linkLocal = cidr.family === 6 && cidr.address >> 118n === 0x3fan;
  const scope = loopback ? "host" : linkLocal ? "link" : "universe";
  if (numeric) return String(SCOPE[scope]);
  return scope === "universe" ? "global" : scope;
}

/** What `ip link` prints as link_type: a name, or with -N the ARPHRD number in brackets. */
function linkType(link: FakeLink, numeric: boolean): string {
  const [name, number] =
    link.kind === undefined
      ? ["loopback", 772]
      : link.kind === "tun" || link.kind === "wireguard"
        ? ["none", 65534]
        : ["ether", 1];
  return numeric ? `[${number}]` : name;
}

/** `ip link show [dev X]` / `ip address show [dev X]`. */
export function showLinks(state: KernelState, args: readonly string[], print: LinkPrint) {
  const dev = args[0] === "dev" ? args[1] : args[0];
  const links = dev === undefined ? state.links : state.links.filter((l) => l.name === dev);
  if (dev !== undefined && links.length === 0)
    throw new Refused(`Device "${dev}" does not exist.`, 1);
  return [...links].sort((a, b) => a.index - b.index).map((l) => linkJson(state, l, print));
}
