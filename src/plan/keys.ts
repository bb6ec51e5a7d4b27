import type { AddressSpec, RouteSpec, RuleSpec } from "../compile/desired.js";
import { addressArgs, routeArgs, ruleArgs } from "../render/ip.js";

/**
 * Each object's key is made once: a plan and its verify compare the same ten thousand routes
 * several times, and spelling an address out is most of the cost. Specs are never mutated.
 */
function memo<T extends object>(key: (t: T) => string): (t: T) => string {
  const made = new WeakMap<T, string>();
  return (t) => {
    let k = made.get(t);
    if (k === undefined) {
      k = key(t);
      made.set(t, k);
    }
    return k;
  };
}

/** Identity of kernel objects: the ip(8) words that would add them (the protocol aside). */
export const routeKey = memo((r: RouteSpec) => routeArgs("add", r, 0).join(" "));
export const ruleKey = memo((r: RuleSpec) => `${r.family} ${ruleArgs("add", r, 0).join(" ")}`);
export const addressKey = memo((a: AddressSpec) => addressArgs("add", a).join(" "));

/**
 * The same strings, in any order (a peer's allowed IPs): compared in order first, which at
 * 10,000 peers of one address each spares a sort and a join per peer.
 */
export const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length &&
  (a.every((x, i) => x === b[i]) || [...a].sort().join(",") === [...b].sort().join(","));
