import { type Cidr, formatCidr, overlaps } from "../net/cidr.js";
import type { SiteIntent } from "../policy/intent.js";
import type { NftSet, SiteState } from "./desired.js";

/** One network's prefix changed alone in the intent (policy/incremental/network-cidr.ts). */
export interface PrefixChange {
  readonly site: string;
  readonly before: Cidr;
  readonly after: Cidr;
}

/** `a . b : c` with each atom equal to `from` given as `to`; the same string where none is. */
function swapAtoms(element: string, from: string, to: string): string {
  if (!element.includes(from)) return element;
  return element
    .split(" : ")
    .map((side) =>
      side
        .split(" . ")
        .map((atom) => (atom === from ? to : atom))
        .join(" . "),
    )
    .join(" : ");
}

/**
 * The state `site` compiles to, from the state compiled before one network's prefix changed
 * alone, or undefined where compiling again is the way. Such a network has no router address,
 * its site no tunnel and the policy no service (network-cidr.ts rules them out), so compiling
 * writes its prefix only as a source: an element (or an atom of one) of the source sets and maps
 * and the site's network list; its family, port and egress, and so every rule, stay. A set
 * element is the prefix as a source unless an egress's `except` holds a prefix overlapping it, or
 * a rule names it: then the state is compiled again. Another site's state says nothing of it.
 */
export function withNetworkPrefix(
  state: SiteState,
  site: SiteIntent,
  change: PrefixChange,
): SiteState | undefined {
  if (state.site !== change.site) return state;
  const from = formatCidr(change.before);
  const to = formatCidr(change.after);
  for (const e of site.egress)
    if (e.except.some((x) => overlaps(x, change.before) || overlaps(x, change.after)))
      return undefined;
  for (const chain of state.nftChains)
    if (chain.rules.some((r) => r.includes(from) || r.includes(to))) return undefined;
  const at = state.networks?.findIndex((n) => n.cidr === from) ?? -1;
  const network = state.networks?.[at];
  if (!state.networks || !network) return undefined;
  const networks = [...state.networks];
  networks[at] = { ...network, cidr: to };
  const nftSets = state.nftSets.map((set): NftSet => {
    let elements: string[] | undefined;
    for (const [i, element] of set.elements.entries()) {
      const swapped = swapAtoms(element, from, to);
      if (swapped === element) continue;
      elements ??= [...set.elements];
      elements[i] = swapped;
    }
    return elements ? { ...set, elements } : set;
  });
  return { ...state, networks, nftSets };
}
