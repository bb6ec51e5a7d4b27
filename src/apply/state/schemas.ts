import * as z from "zod";
import type { AddressSpec, SiteNetwork } from "../../compile/desired.js";
import { formatCidr, parseCidr } from "../../net/cidr.js";

/**
 * The shapes state files share: the record, the journal, the pending revert's snapshot and the
 * compiled cache all hold addresses, sysctls or links, and each reads them with these.
 */

const cidrText = z.string().refine((t) => parseCidr(t).ok, "not a CIDR");
export const addressEntry = z.strictObject({ device: z.string().min(1), cidr: cidrText });
export const sysctlEntry = z.strictObject({
  key: z.string().min(1),
  original: z.string(),
  value: z.string(),
});

/**
 * A site's network, kept to guard it after it leaves the policy (compile/retired.ts), as one
 * string, `closed 10.6.0.0/24 guest0 guest` (or `open …`): the record and the compiled cache
 * may hold 10,000 of them, and strings are written and read several times faster than objects.
 * The prefix goes into an nft rule's text: its shape is checked (the compiler wrote it).
 */
const NETWORK = /^(closed|open) ([0-9a-fA-F.:]+\/\d{1,3}) (\S+) (\S+)$/;
export const siteNetworks = z.array(z.string()).transform((list, ctx): SiteNetwork[] => {
  const out: SiteNetwork[] = [];
  for (const text of list) {
    const m = NETWORK.exec(text);
    if (!m) {
      ctx.addIssue({ code: "custom", message: `not a network: ${text.slice(0, 80)}` });
      return z.NEVER;
    }
    out.push({
      name: m[4] ?? "",
      cidr: m[2] ?? "",
      device: m[3] ?? "",
      failClosed: m[1] === "closed",
    });
  }
  return out;
});
export const networkText = (n: SiteNetwork) =>
  `${n.failClosed ? "closed" : "open"} ${n.cidr} ${n.device} ${n.name}`;

export const linkSpec = z.discriminatedUnion("kind", [
  z.strictObject({
    kind: z.literal("vlan"),
    name: z.string(),
    parent: z.string(),
    vlanId: z.number().int(),
  }),
  z.strictObject({ kind: z.literal("bridge"), name: z.string() }),
  z.strictObject({ kind: z.literal("wireguard"), name: z.string(), mtu: z.number().int() }),
]);

export function toAddress(a: z.infer<typeof addressEntry>): AddressSpec {
  const cidr = parseCidr(a.cidr);
  if (!cidr.ok) throw new Error(`unreachable: schema checked ${a.cidr}`);
  return { device: a.device, cidr: cidr.value };
}

export const fromAddress = (a: AddressSpec) => ({ device: a.device, cidr: formatCidr(a.cidr) });
