import { type Cidr, compareCidr, type Family, formatAddress, formatCidr } from "../net/cidr.js";
import type { Diagnostic } from "../policy/diagnostic.js";
import type {
  EgressIntent,
  Intent,
  PathTable,
  ReplyPath,
  Settings,
  SiteIntent,
} from "../policy/intent.js";
import { type MarkLayout, markLayout, slotMark } from "./marks.js";

/**
 * Egresses whose routing tables would be identical (same device, next hop, fail-closed choice
 * and `except` list) share one table, one mark and one pair of `ip rule`s: the kernel walks its
 * rule list linearly, so ten thousand networks leaving by one VPN cost two rules, not twenty
 * thousand. Sources select the group by an nft map; the group takes the first egress's table
 * and priorities.
 */
export interface EgressGroup {
  readonly egress: readonly EgressIntent[];
  readonly table: number;
  readonly priority: number;
  /** In order of preference; a chain when there are several. */
  readonly paths: EgressIntent["paths"];
  readonly failClosed: boolean;
  readonly except: readonly Cidr[];
  readonly sources: readonly Cidr[];
  /** The group's packet mark; with the layout's flag added for `except` destinations. */
  readonly mark: number;
}

/** A path of a chain: its table, and the mark its probes carry to look that table up. */
export interface PathMark extends PathTable {
  readonly mark: number;
}

export interface SiteMarks {
  readonly layout: MarkLayout;
  readonly replies: readonly (ReplyPath & { readonly mark: number })[];
  readonly groups: readonly EgressGroup[];
  readonly paths: readonly PathMark[];
}

function groupKey(e: EgressIntent): string {
  const paths = e.paths
    .map(
      (via) =>
        `${via.device}${via.kind === "device" && via.gateway ? ` ${formatAddress(via.gateway)}` : ""}`,
    )
    .join(",");
  const except = [...e.except].sort(compareCidr).map(formatCidr).join(",");
  // Egresses whose DNS goes elsewhere cannot share the map that sends it there.
  const dns = e.dns
    ? ` dns ${e.dns.resolvers.map((l) => l.map(formatAddress).join("+")).join(",")} ${e.dns.other} ${e.dns.blockDoT}`
    : "";
  // An egress with a leak canary keeps its own group: the canary speaks for its one egress.
  const canary = e.canary ? ` canary ${e.name}` : "";
  return `${paths} ${e.failClosed} ${except}${dns}${canary}`;
}

/** Marks for one site: reply paths take the first slots, egress groups the next, then chain paths. */
export function siteMarks(settings: Pick<Settings, "markMask">, site: SiteIntent): SiteMarks {
  const layout = markLayout(settings);
  const replies = site.replyPaths.map((r, i) => ({ ...r, mark: slotMark(layout, i + 1) }));
  const byKey = new Map<string, EgressIntent[]>();
  for (const e of site.egress) {
    const key = groupKey(e);
    const list = byKey.get(key);
    if (list) list.push(e);
    else byKey.set(key, [e]);
  }
  const groups = [...byKey.values()].map((egress, i): EgressGroup => {
    const first = egress[0] as EgressIntent;
    // A loop, not flatMap: one group may hold 10,000 egresses.
    const sources: Cidr[] = [];
    for (const e of egress) sources.push(...e.sources);
    return {
      egress,
      table: first.table,
      priority: first.priority,
      paths: first.paths,
      failClosed: first.failClosed,
      except: first.except,
      sources,
      mark: slotMark(layout, replies.length + i + 1),
    };
  });
  const paths = site.pathTables.map((p, i) => ({
    ...p,
    mark: slotMark(layout, replies.length + groups.length + i + 1),
  }));
  return { layout, replies, groups, paths };
}

/**
 * The mark each path of a group routes by: its own table's for a path of a chain (a probe, or
 * DNS sent to that path's resolver), the group's own for a single path.
 */
export function pathMarksOf(marks: SiteMarks, g: EgressGroup): number[] {
  const own = new Map(marks.paths.map((p) => [p.device, p.mark]));
  return g.paths.map((via) => (g.paths.length > 1 ? (own.get(via.device) ?? g.mark) : g.mark));
}

/** Every site's reply paths and egress groups need a mark of their own inside the mask. */
export function checkMarkRoom(intent: Intent): Diagnostic[] {
  const { slots, mask } = markLayout(intent.settings);
  return intent.sites.flatMap((site): Diagnostic[] => {
    const needed =
      site.replyPaths.length + new Set(site.egress.map(groupKey)).size + site.pathTables.length;
    if (needed <= slots) return [];
    return [
      {
        path: ["settings", "markMask"],
        message: `site ${site.name} needs ${needed} marks (reply paths, egress tables and chain paths), but markMask 0x${mask.toString(16)} holds ${slots}; widen it by a bit or more`,
      },
    ];
  });
}

export const ofFamily = (cidrs: readonly Cidr[], family: Family) =>
  cidrs.filter((c) => c.family === family);
