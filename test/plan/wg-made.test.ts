import { describe, expect, it } from "vitest";
import { readAfter } from "../../src/apply/site/read-live.js";
import { compileSite } from "../../src/compile/compile.js";
import type { SiteState, WireguardPeer, WireguardSpec } from "../../src/compile/desired.js";
import { formatCidr, parseCidr } from "../../src/net/cidr.js";
import { diff } from "../../src/plan/diff.js";
import type { LiveState, Ownership, Plan } from "../../src/plan/types.js";
import { changedPeers } from "../../src/plan/wg-made.js";
import { parsePolicy } from "../../src/policy/load.js";
import { generateKeyPair } from "../../src/system/keys.js";
import type { Runner } from "../../src/system/runner.js";
import type { WireguardControl } from "../../src/system/wireguard-uapi.js";
import { hubText } from "../support/hub-text.js";

const SPOKES = 40;
const key = () => generateKeyPair().publicKey;

const desired = compileSite(
  parsePolicy(
    hubText({ hubKey: key(), keys: Array.from({ length: SPOKES }, key), wg: "wgh" }),
    "hub.yaml",
  ).intent,
  "hub",
);
const owned: Ownership = { links: ["wgh"], addresses: [] };
/** A resident's runner: WireGuard over its control sockets (never asked here). */
const runner = { netns: undefined, spawned: 0, wireguard: {} as WireguardControl } as Runner;

/** The hub's interface as a read from the tools gives it: nothing says which spec made it. */
function read(spec: WireguardSpec): LiveState {
  return {
    links: [{ name: "wgh", kind: "tun", up: true, mtu: 1420, ifindex: 7 }],
    addresses: [],
    routes: { owned: [], foreign: [] },
    rules: { owned: [], foreign: [] },
    nft: undefined,
    sysctls: new Map(),
    wireguard: [
      {
        name: spec.name,
        publicKey: spec.publicKey,
        listenPort: spec.listenPort ?? 0,
        peers: spec.peers.map((p) => ({
          publicKey: p.publicKey,
          endpoint: undefined,
          allowedIps: p.allowedIps.map(formatCidr),
          latestHandshake: 5,
          rxBytes: 1,
          txBytes: 2,
          keepalive: p.keepalive,
        })),
      },
    ],
  } as unknown as LiveState;
}

/** `state` with peer `i` changed as compiling from the state before does: every other peer shared. */
function withPeer(state: SiteState, i: number, change: Partial<WireguardPeer>): SiteState {
  const [spec] = state.wireguard as [WireguardSpec];
  const peers = spec.peers.map((p, k) => (k === i ? { ...p, ...change } : p));
  return { ...state, wireguard: [{ ...spec, peers }] };
}

const wgPlan = (state: SiteState, live: LiveState): Plan => {
  const plan = diff(state, live, owned);
  return { ...plan, changes: plan.changes.filter((c) => c.kind === "wireguard") };
};

/** The live state after `state`'s WireGuard change was written over the socket. */
async function written(state: SiteState, before: LiveState): Promise<LiveState> {
  const plan = wgPlan(state, before);
  expect(plan.changes.map((c) => c.kind)).toEqual(["wireguard"]);
  const want = { protocol: 187, sysctlKeys: [], wgNames: ["wgh"] };
  const { after, proven } = await readAfter(runner, want, before, plan, { desired: state, owned });
  expect(proven).toBe(true);
  return after;
}

describe("a WireGuard interface netpol wrote, peer for peer", () => {
  it("is made again only where its peers changed, and planned from those alone as from the whole", async () => {
    const cidr = (t: string) => {
      const c = parseCidr(t);
      if (!c.ok) throw new Error(t);
      return c.value;
    };
    // A first write after a read from the tools: nothing is known peer for peer.
    const first = withPeer(desired, 3, { publicKey: key() });
    const fromTools = read(desired.wireguard[0] as WireguardSpec);
    expect(changedPeers(first.wireguard[0] as WireguardSpec, fromTools.wireguard[0] as never)).toBe(
      undefined,
    );
    let live = await written(first, fromTools);
    let state = first;
    const edits: [number, Partial<WireguardPeer>][] = [
      [7, { publicKey: key() }],
      [7, { allowedIps: [cidr("10.100.0.8/32"), cidr("10.200.0.0/24")] }],
      [12, { keepalive: 25 }],
      [0, { publicKey: key(), keepalive: 10 }],
    ];
    for (const [i, change] of edits) {
      const next = withPeer(state, i, change);
      const [spec] = next.wireguard as [WireguardSpec];
      const [was] = live.wireguard as [LiveState["wireguard"][number]];
      expect(changedPeers(spec, was)).toEqual([i]);
      // The plan from the changed peer alone is the plan from every peer: a copy of the same
      // state, which nothing marks, is compared whole.
      const plan = wgPlan(next, live);
      expect(plan).toEqual(wgPlan(next, structuredClone(live)));
      expect(plan.changes).toHaveLength(1);
      const after = await written(next, live);
      const [now] = after.wireguard as [LiveState["wireguard"][number]];
      // Every other peer is the one held before, its handshake and counters with it.
      for (const [k, p] of now.peers.entries()) {
        if (k === i) continue;
        expect(p).toBe(was.peers[k]);
      }
      const changed = now.peers[i];
      expect(changed?.publicKey).toBe(spec.peers[i]?.publicKey);
      expect(changed?.allowedIps).toEqual(spec.peers[i]?.allowedIps.map(formatCidr));
      expect(changed?.keepalive).toBe(spec.peers[i]?.keepalive);
      // Nothing left to change.
      expect(wgPlan(next, after).changes).toEqual([]);
      expect(wgPlan(next, structuredClone(after)).changes).toEqual([]);
      live = after;
      state = next;
    }
  });
});
