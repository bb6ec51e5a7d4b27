import type { SiteState, WireguardPeer, WireguardSpec } from "../../compile/desired.js";
import type { Intent } from "../intent.js";
import { type KeyChange, siteOfKeyless } from "./member-key.js";

/**
 * A site's compiled state with one tunnel member's key changed, from the state compiled before
 * it: compiling copies a member's key and key file into the WireGuard spec of each site of its
 * tunnel (its own interface, or its peer entry where the site peers with it) and into the
 * probes of egress chains through the tunnel; nowhere else. A site with such a chain is
 * compiled again (undefined).
 */
export function withPeerKey(
  state: SiteState,
  intent: Intent,
  change: KeyChange,
): SiteState | undefined {
  // Only names, devices and chains are read of it: keys are the change's.
  const site = siteOfKeyless(intent, state.site);
  if (!site) return undefined;
  const { tunnel, before, after } = change;
  if (site.egress.some((e) => e.paths.some((p) => p.kind === "tunnel"))) return undefined;
  const at = site.tunnels.findIndex((st) => st.tunnel.name === tunnel.name);
  // Not a member: its state says nothing of the tunnel.
  if (at < 0) return state;
  const local = site.tunnels[at]?.local;
  const spec = state.wireguard[at];
  if (!local || !spec || spec.name !== local.device) return undefined;
  let changed: WireguardSpec;
  if (local.site === before.site) {
    changed = { ...spec, publicKey: after.publicKey, privateKeyFile: after.privateKeyFile };
  } else {
    const index = peerIndex(spec.peers);
    const p = index.get(before.site);
    // A spoke peers with the hub alone: another spoke's key is not in its state.
    if (p === undefined) return state;
    const peers = [...spec.peers];
    peers[p] = { ...(peers[p] as WireguardPeer), publicKey: after.publicKey };
    // The same sites in the same places.
    indexOf.set(peers, index);
    changed = { ...spec, peers };
  }
  const wireguard = [...state.wireguard];
  wireguard[at] = changed;
  return { ...state, wireguard };
}

/** Each peer list's place of each site, made once and handed on to the list made from it. */
const indexOf = new WeakMap<readonly WireguardPeer[], ReadonlyMap<string, number>>();

function peerIndex(peers: readonly WireguardPeer[]): ReadonlyMap<string, number> {
  let index = indexOf.get(peers);
  if (!index) {
    index = new Map(peers.map((peer, i) => [peer.site, i]));
    indexOf.set(peers, index);
  }
  return index;
}
