import type { WireguardPeer, WireguardSpec } from "../compile/desired.js";
import type { WgLive, WgPeerLive } from "./live.js";

/**
 * Each interface's live state that netpol's own write made from a spec (site/read-live.ts,
 * wireguardAfter), with that spec: peer for peer, in its order. Specs are never mutated, and a
 * state compiled from the one before shares every peer it did not change (policy/incremental),
 * so the next plan need look only at the peers that are not the same objects.
 */
const madeFrom = new WeakMap<WgLive, WireguardSpec>();

/** Says that `live` is `spec` as written, peer for peer; returns `live`. */
export function made(live: WgLive, spec: WireguardSpec): WgLive {
  madeFrom.set(live, spec);
  return live;
}

/**
 * The indices of the peers of `spec` that may differ from `live`'s; undefined when `live` was
 * not made from a spec of as many peers (read from the tools: every peer may differ).
 */
export function changedPeers(spec: WireguardSpec, live: WgLive): number[] | undefined {
  const was = madeFrom.get(live);
  const n = spec.peers.length;
  if (!was || was.name !== spec.name || was.peers.length !== n || live.peers.length !== n)
    return undefined;
  const changed: number[] = [];
  for (let i = 0; i < n; i++) if (spec.peers[i] !== was.peers[i]) changed.push(i);
  return changed;
}

/**
 * `spec` and `live` cut to the peers that may differ, the interface's own fields kept: every
 * other peer is the same in both, so what differs between the two is what differs between the
 * whole ones (a peer's key is the policy's alone, never another's). The whole ones where
 * nothing says which peers are the same.
 */
export function narrowed(
  spec: WireguardSpec,
  live: WgLive,
): { readonly spec: WireguardSpec; readonly live: WgLive } {
  const changed = changedPeers(spec, live);
  if (!changed) return { spec, live };
  return {
    spec: { ...spec, peers: changed.map((i) => spec.peers[i] as WireguardPeer) },
    live: { ...live, peers: changed.map((i) => live.peers[i] as WgPeerLive) },
  };
}
