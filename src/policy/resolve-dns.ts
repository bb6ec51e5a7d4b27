import { formatAddress } from "../net/cidr.js";
import type { Path, Report } from "./diagnostic.js";
import type { Address, EgressDns, EgressIntent } from "./intent.js";
import type { EgressDocument } from "./schema.js";

/**
 * An egress's `dns`, lined up with its paths: one list for the whole chain serves every path;
 * a list per path must name exactly the paths of `via`, by the names written there.
 */
export function resolveDns(e: EgressDocument, path: Path, report: Report): EgressDns | undefined {
  if (!e.dns) return undefined;
  const { resolvers, other, blockDoT } = e.dns;
  if (Array.isArray(resolvers)) return { resolvers: e.via.map(() => resolvers), other, blockDoT };
  const at: Path = [...path, "dns", "resolvers"];
  for (const name of Object.keys(resolvers)) {
    if (!e.via.includes(name))
      report({
        path: [...at, name],
        message: `${name} is not a path of this egress; name one of: ${e.via.join(", ")}`,
      });
  }
  const perPath = e.via.map((name): readonly Address[] => resolvers[name] ?? []);
  const missing = e.via.filter((_, i) => perPath[i]?.length === 0);
  if (missing.length > 0) {
    report({
      path: at,
      message: `name the resolvers reached through ${missing.join(", ")} too (or one list for the whole chain)`,
    });
    return undefined;
  }
  return { resolvers: perPath, other, blockDoT };
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
