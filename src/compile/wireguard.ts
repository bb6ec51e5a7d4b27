import { defaultRoute } from "../net/cidr.js";
import { formatEndpoint } from "../net/host-port.js";
import { allowedIpsOf } from "../policy/allowed-ips.js";
import type { Intent, ProviderIntent, SiteIntent } from "../policy/intent.js";
import type { WireguardPeer, WireguardSpec } from "./desired.js";

export function compileWireguard(intent: Intent, site: SiteIntent): WireguardSpec[] {
  return [...tunnelSpecs(intent, site), ...site.providers.map(providerSpec)];
}

/**
 * A provider's peer takes every address, as its wg-quick file says (AllowedIPs 0.0.0.0/0, ::/0):
 * on the device only. What reaches the device is decided by the egress tables that name it;
 * main's default route is never touched.
 */
function providerSpec(p: ProviderIntent): WireguardSpec {
  return {
    name: p.device,
    privateKeyFile: p.privateKeyFile,
    publicKey: p.publicKey,
    peers: [
      {
        site: p.device,
        publicKey: p.peer.publicKey,
        allowedIps: [defaultRoute(4), defaultRoute(6)],
        endpoint: p.peer.endpoint,
        ...(p.keepalive > 0 ? { keepalive: p.keepalive } : {}),
        ...(p.peer.presharedKeyFile !== undefined
          ? { presharedKeyFile: p.peer.presharedKeyFile }
          : {}),
      },
    ],
  };
}

/**
 * The providers whose endpoint is a host name, by device: wg resolves a name once, when it
 * configures the device, and a provider that moved its server leaves the path dead on the old
 * address. The health monitor names it again when the path goes down.
 */
export function namedEndpoints(
  site: SiteIntent,
): ReadonlyMap<string, { readonly publicKey: string; readonly endpoint: string }> {
  return new Map(
    site.providers.flatMap((p) =>
      p.peer.endpoint.address === undefined
        ? [[p.device, { publicKey: p.peer.publicKey, endpoint: formatEndpoint(p.peer.endpoint) }]]
        : [],
    ),
  );
}

function tunnelSpecs(intent: Intent, site: SiteIntent): WireguardSpec[] {
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
