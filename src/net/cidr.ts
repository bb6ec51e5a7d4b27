import ipaddr from "ipaddr.js";

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
  const bytes: number[] = [];
  let rest = value;
  for (let i = 0; i < BITS[family] / 8; i++) {
    bytes.unshift(Number(rest & 0xffn));
    rest >>= 8n;
  }
  return ipaddr.fromByteArray(bytes).toString();
}

function mask(family: Family, prefix: number): bigint {
  const width = BigInt(BITS[family]);
  const host = width - BigInt(prefix);
  return ((1n << width) - 1n) ^ ((1n << host) - 1n);
}

export function parseAddress(text: string): Parsed<{ family: Family; address: bigint }> {
  if (!ipaddr.isValid(text) || text.includes("/")) {
    return { ok: false, error: `${JSON.stringify(text)} is not an IP address` };
  }
  const addr = ipaddr.parse(text);
  const plain = addr.kind() === "ipv6" && (addr as ipaddr.IPv6).zoneId !== undefined;
  if (plain) return { ok: false, error: `${JSON.stringify(text)} has a zone id; drop the %zone` };
  if (addr.kind() === "ipv4" && !ipaddr.IPv4.isValidFourPartDecimal(text)) {
    return { ok: false, error: `${JSON.stringify(text)} is not a dotted-quad IPv4 address` };
  }
  return { ok: true, value: { family: addr.kind() === "ipv4" ? 4 : 6, address: toBigInt(addr) } };
}

/** Parses `addr/prefix`; a bare address is a host prefix (/32 or /128). */
export function parseCidr(text: string): Parsed<Cidr> {
  const [addrText = "", prefixText, extra] = text.split("/");
  if (extra !== undefined) return { ok: false, error: `${JSON.stringify(text)} is not a CIDR` };
  const addr = parseAddress(addrText);
  if (!addr.ok) return { ok: false, error: `${JSON.stringify(text)} is not a CIDR` };
  const width = BITS[addr.value.family];
  const prefix = prefixText === undefined ? width : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? "0") || prefix > width) {
    return { ok: false, error: `${JSON.stringify(text)} has a prefix length outside 0..${width}` };
  }
  return { ok: true, value: { ...addr.value, prefix } };
}

/** The network itself: host bits cleared. */
export function networkOf(cidr: Cidr): Cidr {
  return { ...cidr, address: cidr.address & mask(cidr.family, cidr.prefix) };
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
  const m = mask(outer.family, outer.prefix);
  return (outer.address & m) === (inner.address & m);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b) || contains(b, a);
}

/** The single-address prefix (/32 or /128) of an address or of a CIDR's address. */
export function hostPrefix(addr: { readonly family: Family; readonly address: bigint }): Cidr {
  return { family: addr.family, address: addr.address, prefix: BITS[addr.family] };
}

export function defaultRoute(family: Family): Cidr {
  return { family, address: 0n, prefix: 0 };
}

export function compareCidr(a: Cidr, b: Cidr): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.address !== b.address) return a.address < b.address ? -1 : 1;
  return a.prefix - b.prefix;
}
