import type { SiteState } from "../compile/desired.js";
import type { Family } from "../net/cidr.js";
import { renderCaddy } from "./caddy.js";
import { renderRelay } from "./haproxy.js";
import { addressArgs, batchLine, linkAdd, linkUp, portSet, routeArgs, ruleArgs } from "./ip.js";
import { renderNftables } from "./nftables.js";
import { renderWireguard } from "./wireguard.js";

/**
 * Input for `ip -batch` (links, addresses, IPv4 routes and rules) and `ip -6 -batch` (IPv6
 * routes and rules): a batch line cannot say -6, and a rule with no source would default to
 * IPv4. Everything is stamped with netpol's protocol number.
 */
export function renderIpBatches(state: SiteState): { v4: string; v6: string } {
  const routes = (f: Family) =>
    state.routes.filter((r) => r.dst.family === f).map((r) => routeArgs("add", r, state.protocol));
  const rules = (f: Family) =>
    state.rules.filter((r) => r.family === f).map((r) => ruleArgs("add", r, state.protocol));
  const v4 = [
    ...state.links.flatMap(linkAdd),
    ...state.ports.map(portSet),
    ...state.links.map((l) => linkUp(l.name)),
    ...state.addresses.map((a) => addressArgs("add", a)),
    ...routes(4),
    ...rules(4),
  ];
  const v6 = [...routes(6), ...rules(6)];
  const text = (lines: string[][]) => lines.map((l) => `${batchLine(l)}\n`).join("");
  return { v4: text(v4), v6: text(v6) };
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
  const batches = renderIpBatches(state);
  files.set("ip.batch", batches.v4);
  if (batches.v6 !== "") files.set("ip6.batch", batches.v6);
  files.set("nftables.nft", renderNftables(state));
  files.set("sysctl.conf", renderSysctl(state));
  for (const wg of state.wireguard)
    files.set(`wireguard/${wg.name}.conf`, renderWireguard(wg, privateKeys));
  if (state.proxy) files.set("caddy.json", renderCaddy(state.proxy));
  if (state.relay) files.set("haproxy-relay.cfg", renderRelay(state.site, state.relay));
  return files;
}
