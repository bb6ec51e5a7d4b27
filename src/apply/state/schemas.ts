import * as z from "zod";
import type { AddressSpec } from "../../compile/desired.js";
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
 * A site's network, kept to guard it after it leaves the policy (compile/retired.ts). Its
 * prefix goes into an nft rule's text: a cheap shape check (the compiler wrote it), no parse.
 */
export const siteNetworkEntry = z.strictObject({
  name: z.string().min(1),
  cidr: z.string().regex(/^[0-9a-fA-F.:]+\/\d{1,3}$/),
  device: z.string().min(1),
  failClosed: z.boolean(),
});

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
