import { formatAddress } from "../net/cidr.js";
import type { Path, Report } from "./diagnostic.js";
import type { Address, EgressDns, EgressIntent } from "./intent.js";
import { perPath } from "./per-path.js";
import type { EgressDocument } from "./schema.js";

/**
 * An egress's `dns`, lined up with its paths (see perPath), where a provider's own resolvers
 * (its conf's DNS) stand for a path the list leaves out.
 */
export function resolveDns(
  e: EgressDocument,
  path: Path,
  report: Report,
  providerDns: (name: string) => readonly Address[] | undefined,
): EgressDns | undefined {
  if (!e.dns) return undefined;
  const { resolvers, other, blockDoT } = e.dns;
  const at: Path = [...path, "dns", "resolvers"];
  const lists = perPath(e.via, resolvers, at, "the resolvers reached through", report, providerDns);
  return lists ? { resolvers: lists, other, blockDoT } : undefined;
}

/**
 * A path of a chain routes its DNS by the path's own mark, and the NAT picks the resolver by
 * that mark: two chains through one path must send its DNS to the same resolver.
 */
export function checkSharedResolvers(
  site: string,
  egress: readonly EgressIntent[],
  report: Report,
): void {
  if (egress.length === 0) return;
  const first = new Map<string, { egress: string; resolvers: string }>();
  egress.forEach((e, idx) => {
    if (!e.dns || e.paths.length < 2) return;
    e.paths.forEach((via, p) => {
      const resolvers = (e.dns?.resolvers[p] ?? []).map(formatAddress).join(", ");
      const seen = first.get(via.device);
      if (!seen) first.set(via.device, { egress: e.name, resolvers });
      else if (seen.resolvers !== resolvers)
        report({
          path: ["sites", site, "egress", idx, "dns", "resolvers"],
          message: `egress ${seen.egress} sends DNS through ${via.device} to ${seen.resolvers}; name the same resolvers for it here`,
        });
    });
  });
}
