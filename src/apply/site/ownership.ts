import type { SiteState } from "../../compile/desired.js";
import { addressKey } from "../../plan/keys.js";
import type { LiveLink } from "../../plan/live.js";
import type { LiveState, OwnedSysctl, Ownership, Plan } from "../../plan/types.js";
import { LINK_MARK } from "../../render/ip.js";
import type { Journal } from "../state/journal.js";
import { toAddress } from "../state/schemas.js";

/**
 * netpol's mark on the links it creates, kept by the kernel in the link's ifalias. A link with
 * one of netpol's names but without the mark was made by someone else and is never deleted.
 */
export const isMarked = (link: LiveLink) => link.alias?.startsWith(LINK_MARK) ?? false;

function union<T>(items: readonly T[], key: (t: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}

/**
 * What netpol owns now: links by their mark (plus links an interrupted apply was creating, which
 * may not carry it yet), the record's addresses and sysctls, and whatever the journal of an
 * interrupted apply says it was adding.
 */
export function currentOwnership(
  recorded: Ownership | undefined,
  journal: Journal | undefined,
  live: Pick<LiveState, "links">,
): Ownership {
  const inFlight = new Set(journal?.links ?? []);
  const links = live.links.filter((l) => isMarked(l) || (inFlight.has(l.name) && !l.alias));
  return {
    links: links.map((l) => l.name).sort(),
    addresses: union(
      [...(recorded?.addresses ?? []), ...(journal?.addresses ?? []).map(toAddress)],
      addressKey,
    ),
    sysctls: union([...(recorded?.sysctls ?? []), ...(journal?.sysctls ?? [])], (s) => s.key),
    ...(recorded?.nftSkeleton !== undefined ? { nftSkeleton: recorded.nftSkeleton } : {}),
  };
}

/** Sysctls owned after an apply: the ones still wanted, each with the value it first replaced. */
function sysctlsAfter(before: Ownership, desired: SiteState, plan: Plan): OwnedSysctl[] {
  return desired.sysctls.flatMap(([key, value]): OwnedSysctl[] => {
    const held = before.sysctls?.find((s) => s.key === key);
    if (held) return [{ key, original: held.original, value }];
    const change = plan.changes.find((c) => c.kind === "sysctl" && c.key === key);
    return change?.kind === "sysctl" && change.from !== undefined
      ? [{ key, original: change.from, value }]
      : [];
  });
}

/** Ownership once an apply went through: read from the marks, the plan and the state after. */
export function ownershipAfter(
  before: Ownership,
  desired: SiteState,
  plan: Plan,
  after: LiveState,
): Ownership {
  const desiredKeys = new Set(desired.addresses.map(addressKey));
  const added = plan.changes.flatMap((c) =>
    c.kind === "address" && c.op === "add" ? [c.address] : [],
  );
  const kept = before.addresses.filter((a) => desiredKeys.has(addressKey(a)));
  return {
    links: after.links
      .filter(isMarked)
      .map((l) => l.name)
      .sort(),
    addresses: union([...kept, ...added], addressKey),
    sysctls: sysctlsAfter(before, desired, plan),
    ...(after.nft ? { nftSkeleton: after.nft.skeleton } : {}),
  };
}
