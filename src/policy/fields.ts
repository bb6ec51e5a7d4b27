import * as z from "zod";
import {
  type Cidr,
  formatCidr,
  hasHostBits,
  networkOf,
  parseAddress,
  parseCidr,
} from "../net/cidr.js";
import { interfaceNameProblem, wireguardKeyProblem } from "../net/names.js";
import { quoted } from "../net/quote.js";

/** Field parsers shared by the policy schema: each turns text into a typed value or one clear issue. */

// A refine, not a superRefine: zod's superRefine makes a closure for every value it checks,
// and a hub of 10,000 sites names 20,000 interfaces.
export const ifname = z.string().refine((name) => interfaceNameProblem(name) === undefined, {
  error: (issue) => interfaceNameProblem(String(issue.input)) ?? "",
});

export const siteName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, "use lower-case letters, digits and '-' (e.g. home, vps)");

export const objectName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_.-]{0,62}$/, "use letters, digits, '_', '.' and '-'");

export const port = z
  .number({ error: "a port is a whole number from 1 to 65535" })
  .int("a port is a whole number from 1 to 65535")
  .min(1, "ports start at 1")
  .max(65535, "ports end at 65535");

/** A network: host bits must be clear, and the message proposes the network address. */
export const network = z.string().transform((text, ctx): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed.ok) {
    ctx.addIssue({ code: "custom", message: `${parsed.error}; write it as e.g. 192.168.6.0/24` });
    return z.NEVER;
  }
  if (hasHostBits(parsed.value)) {
    const fixed = formatCidr(networkOf(parsed.value));
    ctx.addIssue({
      code: "custom",
      message: `${text} has host bits set; did you mean ${fixed}?`,
    });
    return z.NEVER;
  }
  return parsed.value;
});

/** An interface address: `addr/prefix`, host bits expected. */
export const interfaceAddress = z.string().transform((text, ctx): Cidr => {
  const parsed = parseCidr(text);
  if (!parsed.ok || !text.includes("/")) {
    ctx.addIssue({
      code: "custom",
      message: `${quoted(text)} is not an address with a prefix length; write e.g. 10.99.0.2/24`,
    });
    return z.NEVER;
  }
  if (!hasHostBits(parsed.value) && parsed.value.prefix < (parsed.value.family === 4 ? 31 : 127)) {
    ctx.addIssue({
      code: "custom",
      message: `${text} is the network address itself; give this host its own address in it`,
    });
    return z.NEVER;
  }
  return parsed.value;
});

export const hostAddress = z.string().transform((text, ctx) => {
  const parsed = parseAddress(text);
  if (!parsed.ok) {
    ctx.addIssue({ code: "custom", message: `${parsed.error}; write a single address` });
    return z.NEVER;
  }
  return parsed.value;
});

/** `host:port` or `[v6]:port`, as WireGuard endpoints and proxy targets are written. */
export const hostPort = z.string().transform((text, ctx) => {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  const portNumber = Number(match?.[3]);
  if (!match || host === undefined) {
    ctx.addIssue({
      code: "custom",
      message: `${quoted(text)} is not host:port; write e.g. 203.0.113.10:51820 or [2001:db8::1]:51820`,
    });
    return z.NEVER;
  }
  if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
    ctx.addIssue({ code: "custom", message: `port ${match[3]} in ${text} is outside 1..65535` });
    return z.NEVER;
  }
  const addr = parseAddress(host);
  return { host, port: portNumber, address: addr.ok ? addr.value : undefined };
});

export type HostPort = z.output<typeof hostPort>;

/**
 * One `host:port`, or a list of them (at most one per address family, checked where the
 * addresses are resolved): always a list on the way out. Each problem is located at its item.
 */
export const hostPorts = z.unknown().transform((value, ctx) => {
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0) {
    ctx.addIssue({ code: "custom", message: "name at least one target, e.g. 192.168.1.22:22" });
    return z.NEVER;
  }
  let failed = false;
  const out = items.map((item, i) => {
    const parsed = hostPort.safeParse(item);
    if (parsed.success) return parsed.data;
    failed = true;
    for (const issue of parsed.error.issues)
      ctx.addIssue({
        code: "custom",
        message:
          typeof item === "string"
            ? issue.message
            : "a target is a string host:port, e.g. 192.168.1.22:22 or [2001:db8::22]:22",
        path: Array.isArray(value) ? [i] : [],
      });
    return undefined;
  });
  return failed ? z.NEVER : out.filter((t) => t !== undefined);
});

export const publicKey = z.string().refine((key) => wireguardKeyProblem(key) === undefined, {
  error: (issue) => wireguardKeyProblem(String(issue.input)) ?? "",
});

/** A key file path: relative to the policy file, no traversal out of a directory by surprise. */
export const keyFile = z
  .string()
  .min(1, "name the file that holds the private key (made by `netpol keygen --out FILE`)")
  .refine((p) => !p.includes("\0"), "a file name cannot contain a NUL byte");

export const tableId = z
  .number()
  .int("a routing table id is a whole number")
  .min(1, "table id 0 is reserved by the kernel; pick another, e.g. 100")
  .max(0xfffffffe, "table ids end at 4294967294")
  .refine(
    (id) => ![253, 254, 255].includes(id),
    "table ids 253 (default), 254 (main) and 255 (local) belong to the kernel; pick another, e.g. 100",
  );

export const rulePriority = z
  .number()
  .int("a rule priority is a whole number")
  .min(1, "priority 0 is the kernel's local rule; pick e.g. 200")
  .max(32765, "priorities from 32766 belong to the kernel's main and default rules; pick e.g. 200");

/**
 * An `http://ADDRESS[:PORT]/…` URL whose host is an address: a request that must follow one
 * route exactly (the leak canary's) cannot first ask DNS, which may leave by another.
 */
export const addressUrl = z.string().transform((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({
      code: "custom",
      message: `${text} is not a URL; write e.g. http://192.0.2.80/ip`,
    });
    return z.NEVER;
  }
  const host = parseAddress(url.hostname.replace(/^\[(.*)\]$/, "$1"));
  if (url.protocol !== "http:" || !host.ok) {
    ctx.addIssue({
      code: "custom",
      message: `${text}: write an http:// URL whose host is an address (e.g. http://192.0.2.80/ip): a name would be looked up by DNS, and https would need one`,
    });
    return z.NEVER;
  }
  return { url: url.href, host: host.value, port: Number(url.port || 80) };
});
