import type {
  AddressSpec,
  LinkSpec,
  PortSpec,
  RouteSpec,
  RuleSpec,
  TableRef,
} from "../compile/desired.js";
import { type Cidr, formatAddress, formatCidr } from "../net/cidr.js";

/**
 * ip(8) arguments for each kind of object. The same words go into `ip -batch` files and into
 * the apply plan, so what `render` shows is what `apply` runs.
 */

const table = (t: TableRef) => (t === "main" ? "main" : String(t));

// Spelled out, never "default": a batch line cannot carry -6, so the address gives the family.
const dst = (c: Cidr) => formatCidr(c);

export function linkAdd(link: LinkSpec): string[][] {
  switch (link.kind) {
    case "vlan":
      return [
        [
          "link",
          "add",
          "link",
          link.parent,
          "name",
          link.name,
          "type",
          "vlan",
          "id",
          String(link.vlanId),
        ],
      ];
    case "bridge":
      return [["link", "add", "name", link.name, "type", "bridge"]];
    case "wireguard":
      return [
        ["link", "add", "name", link.name, "type", "wireguard"],
        ["link", "set", "dev", link.name, "mtu", String(link.mtu)],
      ];
  }
}

/** How netpol's mark on a link it created begins (see apply/ownership): `netpol:<site>`. */
export const LINK_MARK = "netpol:";

export const linkMark = (site: string) => `${LINK_MARK}${site}`;

export function linkMarkArgs(name: string, site: string): string[] {
  return ["link", "set", "dev", name, "alias", linkMark(site)];
}

/** Brings a link up, setting its MTU on the way when given. */
export function linkUp(name: string, mtu?: number): string[] {
  return ["link", "set", "dev", name, ...(mtu !== undefined ? ["mtu", String(mtu)] : []), "up"];
}

export function linkDelete(name: string): string[] {
  return ["link", "delete", "dev", name];
}

export function portSet(port: PortSpec): string[] {
  return ["link", "set", "dev", port.device, "master", port.master];
}

export function addressArgs(verb: "add" | "del", a: AddressSpec): string[] {
  return ["address", verb, formatCidr(a.cidr), "dev", a.device];
}

export function routeArgs(
  verb: "add" | "del" | "replace",
  r: RouteSpec,
  protocol: number,
): string[] {
  const head = ["route", verb, "table", table(r.table)];
  if (r.type === "unreachable") {
    return [
      ...head,
      "unreachable",
      dst(r.dst),
      "metric",
      String(r.metric),
      "proto",
      String(protocol),
    ];
  }
  const via = r.gateway ? ["via", formatAddress(r.gateway)] : [];
  const metric = r.metric !== undefined ? ["metric", String(r.metric)] : [];
  return [...head, dst(r.dst), ...via, "dev", r.device, ...metric, "proto", String(protocol)];
}

/** `VALUE/MASK` as ip(8) reads and prints it; a full mask is left out, as ip prints it. */
function fwmark(value: number, mask: number | undefined): string {
  const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;
  return mask === undefined || mask >>> 0 === 0xffffffff
    ? hex(value)
    : `${hex(value)}/${hex(mask)}`;
}

export function ruleArgs(verb: "add" | "del", r: RuleSpec, protocol: number): string[] {
  const from = r.from ? formatCidr(r.from) : r.family === 4 ? "0.0.0.0/0" : "::/0";
  const to = r.to ? ["to", formatCidr(r.to)] : [];
  const mark = r.fwmark !== undefined ? ["fwmark", fwmark(r.fwmark, r.fwmask)] : [];
  const suppress =
    r.suppressPrefixLength !== undefined
      ? ["suppress_prefixlength", String(r.suppressPrefixLength)]
      : [];
  return [
    "rule",
    verb,
    "priority",
    String(r.priority),
    "from",
    from,
    ...to,
    ...mark,
    "lookup",
    table(r.table),
    ...suppress,
    "protocol",
    String(protocol),
  ];
}

/** One `ip -batch` line; arguments never hold white space, so joining is lossless. */
export function batchLine(args: readonly string[]): string {
  return args.join(" ");
}
