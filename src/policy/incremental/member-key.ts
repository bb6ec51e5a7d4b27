import type { Intent, MemberIntent, SiteTunnel, TunnelIntent } from "../intent.js";
import type { PolicyDocument } from "../schema.js";
import type { KeyChange } from "./peer-key.js";
import type { Region } from "./region.js";

/**
 * Fields of a tunnel member that resolving only copies into its MemberIntent, and checks
 * nowhere but for a public key used twice: a change of them alone changes that one member,
 * found by the member's place (resolve keeps the order of tunnels and members).
 */
const COPIED = new Set(["publicKey", "privateKeyFile"]);

/**
 * The intent of the held one with one member's key (or key file) changed, exactly as resolving
 * the new data would give it; undefined for any other change, or a key another member holds
 * (resolve names that problem).
 */
export function withMemberKey(
  data: PolicyDocument,
  intent: Intent,
  region: Region,
  entries: readonly unknown[],
): { intent: Intent; change: KeyChange } | undefined {
  const [top, t, field] = region.path;
  if (region.path.length !== 3 || top !== "tunnels" || field !== "members") return undefined;
  if (region.oldCount !== 1 || region.newCount !== 1 || typeof t !== "number") return undefined;
  const before = data.tunnels[t]?.members[region.index] as Record<string, unknown> | undefined;
  const after = entries[0] as Record<string, unknown>;
  if (!before) return undefined;
  const keys = Object.keys(after);
  if (keys.length !== Object.keys(before).length) return undefined;
  for (const k of keys)
    if (!(k in before) || (!COPIED.has(k) && !same(before[k], after[k]))) return undefined;
  const key = after.publicKey as string;
  if (key !== before.publicKey)
    for (const [ti, tunnel] of data.tunnels.entries())
      for (const [mi, m] of tunnel.members.entries())
        if (m.publicKey === key && !(ti === t && mi === region.index)) return undefined;
  const tunnel = intent.tunnels[t];
  const member = tunnel?.members[region.index];
  if (!tunnel || !member) return undefined;
  const changed: MemberIntent = {
    ...member,
    publicKey: key,
    privateKeyFile: after.privateKeyFile as string,
  };
  const swap = (m: MemberIntent) => (m === member ? changed : m);
  const next: TunnelIntent = { ...tunnel, members: tunnel.members.map(swap) };
  const siteTunnel = (st: SiteTunnel): SiteTunnel =>
    st.tunnel === tunnel
      ? { ...st, tunnel: next, local: swap(st.local), peers: st.peers.map(swap) }
      : st;
  return {
    intent: {
      ...intent,
      sites: intent.sites.map((site) =>
        site.tunnels.some((st) => st.tunnel === tunnel)
          ? { ...site, tunnels: site.tunnels.map(siteTunnel) }
          : site,
      ),
      tunnels: intent.tunnels.map((x) => (x === tunnel ? next : x)),
    },
    change: { tunnel: next, before: member, after: changed },
  };
}

/** Deep equality of schema output: plain objects, arrays, strings, numbers, bigints. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => k in rb && same(ra[k], rb[k]));
}
