import { allowedIpsOf } from "../policy/allowed-ips.js";
import type { Intent, SiteIntent } from "../policy/intent.js";
import type { WireguardPeer, WireguardSpec } from "./desired.js";

export function compileWireguard(intent: Intent, site: SiteIntent): WireguardSpec[] {
  return site.tunnels.map((st): WireguardSpec => {
    const { tunnel, local } = st;
    const peers = allowedIpsOf(intent, st).map(
      ({ peer, allowedIps }): WireguardPeer => ({
        site: peer.site,
        publicKey: peer.publicKey,
        allowedIps,
        ...(peer.endpoint ? { endpoint: peer.endpoint } : {}),
        // Only the side that dials keeps the NAT mapping open.
        ...(peer.endpoint && !local.endpoint && tunnel.keepalive > 0
          ? { keepalive: tunnel.keepalive }
          : {}),
      }),
    );
    return {
      name: local.device,
      privateKeyFile: local.privateKeyFile,
      publicKey: local.publicKey,
      ...(local.listenPort !== undefined ? { listenPort: local.listenPort } : {}),
      peers,
    };
  });
}
