import { formatAddress } from "../../net/cidr.js";
import type { Intent } from "../../policy/intent.js";
import type { Runner } from "../../system/runner.js";

/**
 * Whether an apply did harm: the tunnel peers that answered before it must answer after it.
 * Peers that did not answer before (a first apply, a hub whose spokes have not come yet) are
 * not asked for. The probe is the data path itself, one ping through the tunnel per peer.
 */
export type PeerProbe = (
  runner: Runner,
  addresses: readonly string[],
) => Promise<ReadonlySet<string>>;

/** At most this many peers are probed (a hub has one per spoke): the first in policy order. */
const MAX_PEERS = 16;

/** The tunnel addresses of the peers `site` has under `intent`. */
export function peerAddresses(intent: Intent, site: string): string[] {
  const self = intent.sites.find((s) => s.name === site);
  const addresses = (self?.tunnels ?? []).flatMap((t) =>
    t.peers.map((p) => formatAddress(p.address)),
  );
  return [...new Set(addresses)].slice(0, MAX_PEERS);
}

/** One ping each, side by side, from the site's namespace; the addresses that answered. */
export const pingPeers: PeerProbe = async (runner, addresses) => {
  const answered = await Promise.all(
    addresses.map((a) =>
      runner
        .run("ping", ["-n", "-q", "-c", "1", "-W", "1", a], { step: "health probe" })
        .then(() => true)
        .catch(() => false),
    ),
  );
  return new Set(addresses.filter((_, i) => answered[i]));
};
