import type { ChainSpec } from "../compile/chains.js";
import type { RouteSpec } from "../compile/desired.js";
import { defaultRoute } from "../net/cidr.js";
import { slotOccupant } from "../plan/slots.js";
import type { Active } from "./choose.js";

/**
 * Which path of a chain the kernel's slot holds now, read from netpol's live routes: a path,
 * none (unreachable: fail closed), or undefined when the slot is empty or holds a stranger.
 */
export function activeIn(chain: ChainSpec, routes: readonly RouteSpec[]): Active | undefined {
  const family = chain.families[0];
  const preferred = family !== undefined ? chain.paths[0]?.hops[family] : undefined;
  if (family === undefined || !preferred) return undefined;
  const held = slotOccupant(
    {
      type: "unicast",
      table: chain.table,
      dst: defaultRoute(family),
      ...preferred,
      choices: chain.paths.flatMap((p) => p.hops[family] ?? []),
    },
    routes,
  );
  if (held?.kind === "none") return "none";
  const at = held ? chain.paths.findIndex((p) => p.device === held.hop.device) : -1;
  return at >= 0 ? at : undefined;
}
