import ipaddr from "ipaddr.js";
import { quoted } from "./quote.js";

export type Family = 4 | 6;

/** An IP network or host prefix held as numbers, so containment is plain arithmetic. */
export interface Cidr {
  readonly family: Family;
  /** The address as given (host bits may be set for interface addresses). */
  readonly address: bigint;
  readonly prefix: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function bits(family: Family): number {
  return BITS[family];
}

function toBigInt(addr: ipaddr.IPv4 | ipaddr.IPv6): bigint {
  return addr.toByteArray().reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

function fromBigInt(value: bigint, family: Family): string {
  if (family === 4) {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const bytes: number[] = [];
  let rest = value;
  for (let i = 0; i < BITS[family] / 8; i++) {
    bytes.unshift(Number(rest & 0xffn));
    rest >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

function maskOf(family: Family, prefix: number): bigint {
  const width = BigInt(BITS[family]);
  const host = width - BigInt(prefix);
  return ((1n << width) - 1n) ^ ((1n << host) - 1n);
}

/** Every netmask, computed once: BigInt arithmetic allocates, and masks are used per prefix. */
const MASKS: Record<Family, readonly bigint[]> = {
  4: Array.from({ length: 33 }, (_, p) => maskOf(4, p)),
  6: Array.from({ length: 129 }, (_, p) => maskOf(6, p)),
};

function mask(family: Family, prefix: number): bigint {
  return MASKS[family][prefix] as bigint;
}

/**
 * IPv4 netmasks as int32 bit patterns: an IPv4 address fits a double, and `&` on two of them
 * is the network without a BigInt, which allocates for every result.
 */
const MASKS4: readonly number[] = Array.from({ length: 33 }, (_, p) =>
  p === 0 ? 0 : -1 << (32 - p),
);

/**
 * Every Cidr is made here, its fields always in this order: objects made otherwise (a spread
 * copy) get another hidden class, and code that sees several of them (every overlap check and
 * lookup) runs several times slower.
 */
export function makeCidr(family: Family, address: bigint, prefix: number): Cidr {
  return { family, address, prefix };
}

/**
 * Dotted-quad IPv4 without leading zeros (an octal reading would differ), the common case: four
 * octets of 0..255, each `0` or 1–3 digits not starting with 0. Read by character codes: a
 * regular expression and its match array for each of the 20,000 prefixes of a large policy was
 * a tenth of checking its schema.
 */
function parseDottedQuad(text: string): bigint | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return undefined;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if ((digits === 1 && octet === 0) || digits === 3) return undefined;
      octet = octet * 10 + (c - 48);
      digits++;
      if (octet > 255) return undefined;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return BigInt(value * 256 + octet);
}

export function parseAddress(text: string): Parsed<{ family: Family; address: bigint }> {
  const v4 = parseDottedQuad(text);
  if (v4 !== undefined) return { ok: true, value: { family: 4, address: v4 } };
  if (!ipaddr.isValid(text) || text.includes("/")) {
    return { ok: false, error: `${quoted(text)} is not an IP address` };
  }
  const addr = ipaddr.parse(text);
  const plain = addr.kind() === "ipv6" && (addr as ipaddr.IPv6).zoneId !== undefined;
  if (plain) return { ok: false, error: `${quoted(text)} has a zone id; drop the %zone` };
  if (addr.kind() === "ipv4" && !ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { ok: false, error: `${quoted(text)} is not a dotted-quad IPv4 address` };
  }
  return { ok: true, value: { family: addr.kind() === "ipv4" ? 4 : 6, address: toBigInt(addr) } };
}

/** One to three decimal digits. */
function isShortNumber(text: string): boolean {
  if (text.length === 0 || text.length > 3) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Parses `addr/prefix`; a bare address is a host prefix (/32 or /128). */
export function parseCidr(text: string): Parsed<Cidr> {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  if (prefixText?.includes("/")) return { ok: false, error: `${quoted(text)} is not a CIDR` };
  const addr = parseAddress(addrText);
  if (!addr.ok) return { ok: false, error: `${quoted(text)} is not a CIDR` };
  const width = BITS[addr.value.family];
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (!isShortNumber(prefixText ?? "0") || prefix > width) {
    return { ok: false, error: `${quoted(text)} has a prefix length outside 0..${width}` };
  }
  return { ok: true, value: makeCidr(addr.value.family, addr.value.address, prefix) };
}

/** The network itself: host bits cleared. */
export function networkOf(c: Cidr): Cidr {
  if (c.family === 4) {
    const n = Number(c.address);
    const net = (n & (MASKS4[c.prefix] as number)) >>> 0;
    // Most prefixes are networks already: no copy to make.
    return net === n ? c : makeCidr(4, BigInt(net), c.prefix);
  }
  const address = c.address & mask(c.family, c.prefix);
  return address === c.address ? c : makeCidr(c.family, address, c.prefix);
}

export function hasHostBits(cidr: Cidr): boolean {
  return networkOf(cidr).address !== cidr.address;
}

export function formatAddress(cidr: Pick<Cidr, "family" | "address">): string {
  return fromBigInt(cidr.address, cidr.family);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr)}/${cidr.prefix}`;
}

/** True when every address of `inner` lies inside `outer`. */
export function contains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  if (outer.family === 4) {
    return (
      ((Number(outer.address) ^ Number(inner.address)) & (MASKS4[outer.prefix] as number)) === 0
    );
  }
  const m = mask(outer.family, outer.prefix);
  return (outer.address & m) === (inner.address & m);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b) || contains(b, a);
}

/** The single-address prefix (/32 or /128) of an address or of a CIDR's address. */
export function hostPrefix(addr: { readonly family: Family; readonly address: bigint }): Cidr {
  return makeCidr(addr.family, addr.address, BITS[addr.family]);
}

export function defaultRoute(family: Family): Cidr {
  return makeCidr(family, 0n, 0);
}

export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.prefix - b.prefix;
}

/**
 * Every pair of items whose prefixes overlap, as [outer, inner] with outer containing inner
 * (equal prefixes count), in O(n log n + pairs). Two prefixes are either nested or disjoint, so
 * after sorting by network address and then length, the prefixes that contain an item are
 * exactly those on a stack of nested ones: never more than 129 deep.
 */
export function nestedPairs<T>(items: readonly T[], cidrOf: (item: T) => Cidr): [T, T][] {
  type Keyed = { item: T; net: Cidr };
  const keyed = items.map((item): Keyed => ({ item, net: networkOf(cidrOf(item)) }));
  keyed.sort((a, b) => compareCidr(a.net, b.net));
  const pairs: [T, T][] = [];
  const stack: Keyed[] = [];
  for (const k of keyed) {
    while (stack.length > 0 && !contains((stack.at(-1) as Keyed).net, k.net)) {
      stack.pop();
    }
    for (let i = 0; i < stack.length; i++) pairs.push([(stack[i] as Keyed).item, k.item]);
    stack.push(k);
  }
  return pairs;
}

/**
 * A lookup of the prefix holding an address among prefixes that do not overlap (a site's
 * networks), by binary search over them sorted.
 */
export function prefixLookup<T>(
  items: readonly T[],
  cidrOf: (item: T) => Cidr,
): (addr: { readonly family: Family; readonly address: bigint }) => T | undefined {
  const sorted = items.map((item) => ({ item, net: networkOf(cidrOf(item)) }));
  sorted.sort((a, b) => compareCidr(a.net, b.net));
  return (addr) => {
    const host = hostPrefix(addr);
    let lo = 0;
    let hi = sorted.length - 1;
    let found: (typeof sorted)[0] | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const k = sorted[mid] as (typeof sorted)[0];
      if (compareCidr(k.net, host) <= 0) {
        found = k;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found && contains(found.net, host) ? found.item : undefined;
  };
}
