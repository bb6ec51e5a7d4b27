import {
  type Cidr,
  defaultRoute,
  type Family,
  networkOf,
  parseAddress,
  parseCidr,
} from "../../../src/net/cidr.js";
import { malformed, PROTO, type Refused, TABLE } from "./state.js";

/** Reading iproute2's words the way iproute2 does. */

/** Splits a batch line like iproute2's makeargs: white space, double quotes, `#` comments. */
export function splitArgs(line: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === "#") {
      break;
    } else if (c === '"') {
      const end = line.indexOf('"', i + 1);
      const stop = end < 0 ? line.length : end;
      args.push(line.slice(i + 1, stop));
      i = stop + 1;
    } else {
      let j = i;
      while (j < line.length && !/\s/.test(line[j] as string)) j++;
      args.push(line.slice(i, j));
      i = j;
    }
  }
  return args;
}

/** iproute2 accepts any prefix of a keyword (`addr`, `del`, `sh`). */
export function matches(word: string | undefined, keyword: string): boolean {
  return word !== undefined && word.length > 0 && keyword.startsWith(word);
}

export function garbage(word: string): Refused {
  return malformed(`Error: either "to" is duplicate, or "${word}" is a garbage.`);
}

/** The argument after a keyword, or iproute2's complaint that it is missing. */
export function next(args: readonly string[], i: number): string {
  const value = args[i + 1];
  if (value === undefined) throw malformed('Command line is not complete. Try option "help"');
  return value;
}

export function familyName(family: Family): string {
  return family === 4 ? "inet" : "inet6";
}

/** A prefix as `ip` reads it: `default`/`all`, an address (a host prefix) or a CIDR. */
export function readPrefix(text: string, family: Family | undefined): Cidr {
  if (text === "default" || text === "all" || text === "any") return defaultRoute(family ?? 4);
  const parsed = parseCidr(text);
  if (!parsed.ok || (family !== undefined && parsed.value.family !== family)) {
    const want = family === undefined ? "prefix" : `${familyName(family)} prefix`;
    throw malformed(`Error: ${want} is expected rather than "${text}".`, 1);
  }
  return networkOf(parsed.value);
}

export function readAddress(text: string, family: Family | undefined): bigint {
  const parsed = parseAddress(text);
  if (!parsed.ok || (family !== undefined && parsed.value.family !== family)) {
    const want = family === undefined ? "address" : `${familyName(family)} address`;
    throw malformed(`Error: ${want} is expected rather than "${text}".`, 1);
  }
  return parsed.value.address;
}

export function readU32(text: string, what: string): number {
  const value = /^(0x[0-9a-f]+|\d+)$/i.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw malformed(`Error: argument "${text}" is wrong: "${what}" value is invalid`);
  return value;
}

const TABLE_NAMES: Record<string, number> = {
  main: TABLE.main,
  local: TABLE.local,
  default: TABLE.default,
};

export function readTable(text: string): number {
  return TABLE_NAMES[text] ?? readU32(text, "table");
}

export function tableName(id: number, numeric: boolean): string {
  if (numeric) return String(id);
  return Object.entries(TABLE_NAMES).find(([, v]) => v === id)?.[0] ?? String(id);
}

const PROTO_NAMES: Record<string, number> = {
  kernel: PROTO.kernel,
  boot: PROTO.boot,
  static: PROTO.static,
  redirect: 1,
  ra: 9,
  dhcp: 16,
};

export function readProtocol(text: string): number {
  const value = PROTO_NAMES[text] ?? readU32(text, "protocol");
  if (value > 255)
    throw malformed(`Error: argument "${text}" is wrong: "protocol" value is invalid`);
  return value;
}

export function protocolName(id: number, numeric: boolean): string {
  if (numeric) return String(id);
  return Object.entries(PROTO_NAMES).find(([, v]) => v === id)?.[0] ?? String(id);
}
