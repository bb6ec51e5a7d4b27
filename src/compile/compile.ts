import { NetpolError } from "../errors.js";
import type { Intent } from "../policy/intent.js";
import type { SiteState } from "./desired.js";
import { siteMarks } from "./egress-groups.js";
import { compileLinks } from "./links.js";
import { compileNftables } from "./nftables.js";
import { compileProxy } from "./proxy.js";
import { compileRelay } from "./relay.js";
import { siteNetworks } from "./retired.js";
import { compileRouting } from "./routing.js";
import { compileSysctls } from "./sysctl.js";
import { compileWireguard } from "./wireguard.js";

/** Intent → one site's desired state. Pure: the same intent always gives the same state. */
export function compileSite(intent: Intent, siteName: string): SiteState {
  const site = intent.sites.find((s) => s.name === siteName);
  if (!site) {
    const known = intent.sites.map((s) => s.name).join(", ");
    throw new NetpolError(
      "NETPOL_E_UNKNOWN_SITE",
      `no site ${siteName} in this policy; pick one of: ${known}`,
    );
  }
  const { links, ports, addresses } = compileLinks(site);
  const wireguard = compileWireguard(intent, site);
  const marks = siteMarks(intent.settings, site);
  const { rules, routes } = compileRouting(intent, site, marks, wireguard);
  const nft = compileNftables(intent, site, marks);
  const proxy = compileProxy(intent, site);
  const relay = compileRelay(intent, site);
  const published = intent.services.flatMap((s) =>
    s.kind !== "http" && s.publishOn === siteName
      ? [
          {
            service: s.name,
            kind: s.kind,
            port: s.port,
            ...(s.proxyProtocol !== undefined ? { relay: true as const } : {}),
          },
        ]
      : [],
  );
  return {
    site: siteName,
    protocol: intent.settings.routeProtocol,
    links,
    ports,
    addresses,
    routes,
    rules,
    nftSets: nft.sets,
    nftChains: nft.chains,
    wireguard,
    sysctls: compileSysctls(intent, site),
    ...(proxy ? { proxy } : {}),
    ...(site.wan && published.length > 0 ? { published: { wan: site.wan, ports: published } } : {}),
    ...(relay ? { relay } : {}),
    networks: siteNetworks(site, marks),
  };
}
