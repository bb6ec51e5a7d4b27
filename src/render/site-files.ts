import type { SiteState } from "../compile/desired.js";
import { renderCaddy } from "./caddy.js";
import { addressArgs, batchLine, linkAdd, linkUp, portSet, routeArgs, ruleArgs } from "./ip.js";
import { renderNftables } from "./nftables.js";
import { renderWireguard } from "./wireguard.js";

/** Input for `ip -batch`: create links, then addresses, routes and rules, all stamped as netpol's. */
export function renderIpBatch(state: SiteState): string {
  const lines = [
    ...state.links.flatMap(linkAdd),
    ...state.ports.map(portSet),
    ...state.links.map((l) => linkUp(l.name)),
    ...state.addresses.map((a) => addressArgs("add", a)),
    ...state.routes.map((r) => routeArgs("add", r, state.protocol)),
    ...state.rules.map((r) => ruleArgs("add", r, state.protocol)),
  ].map(batchLine);
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

export function renderSysctl(state: SiteState): string {
  return state.sysctls.map(([k, v]) => `${k} = ${v}\n`).join("");
}

/**
 * Every file a site needs, by relative path. Private keys come in as an argument, read by the
 * caller, so rendering stays pure.
 */
export function renderSiteFiles(
  state: SiteState,
  privateKeys: ReadonlyMap<string, string>,
): Map<string, string> {
  const files = new Map<string, string>();
  files.set("ip.batch", renderIpBatch(state));
  files.set(
    "nftables.nft",
    renderNftables(state.nftChains, `netpol: table inet netpol for site ${state.site}`),
  );
  files.set("sysctl.conf", renderSysctl(state));
  for (const wg of state.wireguard) {
    const key = privateKeys.get(wg.privateKeyFile);
    if (key === undefined)
      throw new Error(`unreachable: no private key read for ${wg.privateKeyFile}`);
    files.set(`wireguard/${wg.name}.conf`, renderWireguard(wg, key));
  }
  if (state.proxy) files.set("caddy.json", renderCaddy(state.proxy));
  return files;
}
