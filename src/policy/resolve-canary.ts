import type { Path, Report } from "./diagnostic.js";
import type { EgressCanary, NetworkIntent } from "./intent.js";
import { perPath } from "./per-path.js";
import type { EgressDocument } from "./schema.js";

/**
 * An egress's leak canary. Its request leaves from the router's own address in one of the
 * egress's networks, so every rule that would move that network's traffic (a foreign
 * `ip rule from …`) moves the canary too; the expected addresses line up with the paths.
 */
export function resolveCanary(
  e: EgressDocument,
  from: readonly NetworkIntent[],
  path: Path,
  report: Report,
): EgressCanary | undefined {
  if (!e.canary) return undefined;
  const { url, expect, interval } = e.canary;
  const at: Path = [...path, "canary"];
  const family = url.host.family;
  const network = from.find((n) => n.address?.family === family);
  if (!network?.address) {
    const named = from.filter((n) => n.cidr.family === family).map((n) => n.name);
    report({
      path: [...at, "url"],
      message: named.length
        ? `the canary asks from the router's address in the egress's network: give network ${named[0]} an address (networks[].address)`
        : `the canary's address is IPv${family}, and no network of this egress is: use an IPv${family === 4 ? 6 : 4} echo URL`,
    });
    return undefined;
  }
  const lists = perPath(
    e.via,
    expect,
    [...at, "expect"],
    "the addresses the echo shows through",
    report,
  );
  if (!lists) return undefined;
  return {
    url: url.url,
    host: url.host,
    port: url.port,
    source: { family, address: network.address.address },
    expect: lists,
    interval,
  };
}
