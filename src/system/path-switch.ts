import type { ChainSpec } from "../compile/chains.js";
import { NFT_TABLE, type RouteSpec } from "../compile/desired.js";
import { dnsElement, dnsMapName } from "../compile/dns.js";
import { hexMark } from "../compile/marks.js";
import { NetpolError } from "../errors.js";
import type { Active } from "../health/choose.js";
import { defaultRoute, type Family } from "../net/cidr.js";
import { slotMetric } from "../plan/slots.js";
import { batchLine, routeArgs } from "../render/ip.js";
import { runIpBatch } from "./iproute2/iproute2.js";
import { loadNft } from "./nftables.js";
import type { Runner } from "./runner.js";

/**
 * The slot's route for each family: the path's device, or unreachable at the slot's metric.
 * The fail-closed route of the highest metric stays behind it either way.
 */
export function slotRoutes(chain: ChainSpec, active: Active): RouteSpec[] {
  return chain.families.flatMap((family): RouteSpec[] => {
    const dst = defaultRoute(family);
    if (active === "none")
      return [{ type: "unreachable", table: chain.table, dst, metric: slotMetric(family) }];
    const hop = chain.paths[active]?.hops[family];
    return hop ? [{ type: "unicast", table: chain.table, dst, ...hop }] : [];
  });
}

/**
 * Moves an egress to another path, or to none, by replacing its table's default route in
 * place: one `ip route replace` per family, each one netlink message, so a lookup sees the
 * old route or the new one and never an empty table (and the unreachable route behind it
 * would answer even then). One process for both families.
 */
export async function switchPath(
  runner: Runner,
  chain: ChainSpec,
  active: Active,
  protocol: number,
): Promise<void> {
  const lines = slotRoutes(chain, active).map((r) => batchLine(routeArgs("replace", r, protocol)));
  await runIpBatch(runner, lines, "any", `path switch of egress ${chain.name}`);
  if (chain.dnsGroup !== undefined) {
    await loadNft(runner, dnsSwitch(chain.dnsGroup, active), `DNS switch of egress ${chain.name}`);
  }
}

/**
 * One nft transaction that points the egress's DNS at the path (its mark, so its route, and
 * the resolver the NAT picks by that mark) or at the drop of none: the map's one element
 * replaced, so a DNS packet meets the old path or the new one, never neither.
 */
export function dnsSwitch(group: number, active: Active): string {
  const map = `inet ${NFT_TABLE} ${dnsMapName(group)}`;
  return `delete element ${map} { 53 }\nadd element ${map} { ${dnsElement(group, active)} }\n`;
}

const CONNTRACK_FAMILY: Record<Family, string> = { 4: "ipv4", 6: "ipv6" };

/**
 * Clears the connections of a chain's egress (they carry its connection mark): their address
 * translation belongs to the path they started on, so a packet routed by another would leave
 * with the wrong source and the flow would hang. Cleared, the next packet starts afresh and
 * the application reconnects. conntrack exits 1 when it found nothing to delete.
 */
export async function clearFlows(runner: Runner, chain: ChainSpec): Promise<void> {
  const mark = `${hexMark(chain.connMark)}/${hexMark(chain.mask)}`;
  await Promise.all(
    chain.families.map(async (family) => {
      try {
        await runner.run("conntrack", ["-D", "-f", CONNTRACK_FAMILY[family], "--mark", mark], {
          step: `clearing the connections of egress ${chain.name}`,
        });
      } catch (err) {
        const said = err instanceof NetpolError ? String(err.details.stderr ?? "") : "";
        if (!/0 flow entries have been deleted/.test(said)) throw err;
      }
    }),
  );
}
