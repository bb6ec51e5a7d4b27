import {
  type Cidr,
  formatAddress,
  formatCidr,
  parseAddress,
  parseCidr,
} from "../../src/net/cidr.js";

/**
 * The core's data as JSON a person can read and edit: prefixes and addresses as text, maps as
 * objects. Keys say which strings are prefixes, so nothing else (nft text, peer keys) is read
 * as one.
 */

const PREFIX_KEYS = new Set(["dst", "cidr"]);
// A rule's ends; a sysctl change's `from` and `to` are values.
const RULE_ENDS = new Set(["from", "to"]);
const MAP_KEYS = new Set(["sysctls", "wgConfs", "elements"]);

export function encode(value: unknown): string {
  return `${JSON.stringify(
    value,
    function (key, v: unknown) {
      const raw = (this as Record<string, unknown>)[key];
      if (raw instanceof Map) return Object.fromEntries(raw);
      if (v !== null && typeof v === "object" && typeof (v as Cidr).address === "bigint") {
        const c = v as Cidr;
        return "prefix" in c ? formatCidr(c) : formatAddress(c);
      }
      return v;
    },
    2,
  )}\n`;
}

function must<T>(parsed: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

const cidr = (text: string) => must(parseCidr(text));

function revive(key: string, value: unknown, parent: Record<string, unknown>): unknown {
  if (typeof value === "string" && PREFIX_KEYS.has(key)) return cidr(value);
  if (typeof value === "string" && RULE_ENDS.has(key) && "priority" in parent) return cidr(value);
  if (typeof value === "string" && key === "gateway") return must(parseAddress(value));
  if (typeof value === "string" && key === "address" && "host" in parent)
    return must(parseAddress(value));
  if (MAP_KEYS.has(key) && value !== null && typeof value === "object" && !Array.isArray(value))
    return new Map(Object.entries(value));
  // A desired WireGuard peer (it names its site) holds prefixes; a live one, wg's text.
  if (key === "allowedIps" && "site" in parent && Array.isArray(value))
    return value.map((v) => cidr(String(v)));
  return value;
}

export function decode<T>(text: string): T {
  return JSON.parse(text, function (key, value) {
    return revive(key, value, this as Record<string, unknown>);
  }) as T;
}
