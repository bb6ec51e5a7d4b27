import type { ProviderIntent } from "./intent.js";
import { endpointOf } from "./resolve-tunnels.js";
import type { SiteDocument } from "./schema.js";

/** A site's WireGuard providers: structural checks were the schema's; names are resolve-site's. */
export function resolveProviders(site: SiteDocument): ProviderIntent[] {
  return site.providers.map((p) => ({
    device: p.name,
    addresses: p.address,
    publicKey: p.publicKey,
    privateKeyFile: p.privateKeyFile,
    dns: p.dns,
    mtu: p.mtu,
    keepalive: p.keepalive,
    peer: {
      publicKey: p.peer.publicKey,
      endpoint: endpointOf(p.peer.endpoint),
      ...(p.peer.presharedKeyFile !== undefined
        ? { presharedKeyFile: p.peer.presharedKeyFile }
        : {}),
    },
  }));
}
