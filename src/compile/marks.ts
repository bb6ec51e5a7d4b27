import type { Settings } from "../policy/intent.js";

/**
 * netpol's packet and connection marks live in the bits of `settings.markMask` and nowhere
 * else: every write keeps the other bits (`meta mark set meta mark & ~mask | value`), every
 * match looks only at netpol's bits, so Tailscale, Docker, wg-quick and the rest keep theirs.
 *
 * Inside the mask, the lowest bit is a flag and the bits above it count slots: reply paths
 * first, then egress tables. On a packet mark the flag means "an `except` destination: look
 * in main first"; on a connection mark of a publishing site it means "masquerade this DNAT".
 */
export interface MarkLayout {
  readonly mask: number;
  readonly flag: number;
  /** How many slot values the mask holds (slot 0 is "unmarked"). */
  readonly slots: number;
}

const u32 = (n: number) => n >>> 0;

export function markLayout(settings: Pick<Settings, "markMask">): MarkLayout {
  const mask = u32(settings.markMask);
  const flag = u32(mask & -mask);
  return { mask, flag, slots: Math.floor(mask / (flag * 2)) };
}

/** The mark value of slot `n` (1-based). */
export function slotMark(layout: MarkLayout, n: number): number {
  return u32(n * layout.flag * 2);
}

export const hexMark = (n: number) => `0x${u32(n).toString(16).padStart(8, "0")}`;

/** nft: write `value` into the masked bits of the packet or connection mark, keep the rest. */
export function setMark(kind: "meta" | "ct", mask: number, value: number): string {
  return `${kind} mark set ${kind} mark & ${hexMark(~mask)} | ${hexMark(value)}`;
}

/** nft: the masked bits of the packet or connection mark equal (or not) one of `values`. */
export function matchMark(
  kind: "meta" | "ct",
  mask: number,
  values: readonly number[],
  op: "==" | "!=" = "==",
): string {
  const rhs =
    values.length === 1 ? hexMark(values[0] ?? 0) : `{ ${values.map(hexMark).join(", ")} }`;
  return `${kind} mark & ${hexMark(mask)} ${op} ${rhs}`;
}

/** A mask is one run of at least two bits: a flag and room for slots above it. */
export function maskProblem(mask: number): string | undefined {
  const m = u32(mask);
  const low = u32(m & -m);
  const run = m / low + 1;
  if (m === 0 || (run & (run - 1)) !== 0)
    return "a mark mask is one run of set bits, like 0xff000000";
  if (m === low) return "a mark mask needs at least two bits: a flag and room for marks";
  return undefined;
}
