import { loadRecord } from "../../apply/state/record.js";
import type { Target } from "../../apply/target.js";
import { readWireguard } from "../../system/wireguard.js";

/**
 * The site's WireGuard peers with a recent handshake, of all its peers: the health summary of
 * its live report. The interfaces are the links netpol made (wg lists only WireGuard ones).
 */
export async function tunnelCount(target: Target): Promise<{ up: number; of: number }> {
  try {
    const record = await loadRecord(target.files);
    if (!record) return { up: 0, of: 0 };
    // Loaded with the first tunnel there is to count: status's module brings the probers' process
    // spawner (execa) with it, which an agent waiting for its first revision does not need.
    const { HANDSHAKE_STALE_SECONDS } = await import("../../status/egress-health.js");
    const { live } = await readWireguard(target.runner, new Set(record.ownership.links));
    const now = Date.now() / 1000;
    const peers = live.flatMap((w) => w.peers);
    const up = peers.filter(
      (p) => p.latestHandshake > 0 && now - p.latestHandshake < HANDSHAKE_STALE_SECONDS,
    );
    return { up: up.length, of: peers.length };
  } catch {
    return { up: 0, of: 0 };
  }
}
