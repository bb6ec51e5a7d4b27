import { type LiveReader, type LiveWanted, type Part, readParts } from "../apply/site/read-live.js";
import type { SiteState } from "../compile/desired.js";
import type { WgLive } from "../plan/live.js";
import type { LiveState } from "../plan/types.js";
import type { NetlinkEvent } from "../system/iproute2/monitor.js";
import { configOfLive } from "../system/wireguard.js";

/**
 * The site's live state as a resident process holds it, kept current from the kernel's own
 * reports instead of read again in full for every reconcile:
 *
 * - links (present, up) change with each `ip monitor` event, at once: a reaction to a device
 *   coming back needs nothing else;
 * - addresses, routes and rules: any event about them (or a link that went, taking its routes
 *   along without a word) marks them stale, and the next reconcile reads them again through
 *   the resident's `ip -batch` session, which costs no process;
 * - nftables, WireGuard, sysctls, Caddy and the listening sockets send no events here: they
 *   are what the last full read or netpol's own verified apply found, read again by the
 *   periodic full reconcile (WireGuard whenever an apply needs its configs: its control socket
 *   costs no process; the sockets for each new policy, which may publish ports).
 */
export class LiveModel {
  private held: { readonly state: LiveState; readonly wanted: LiveWanted } | undefined;
  private ipStale = true;
  /** Sockets send no event: a new policy (which may publish ports) reads them again. */
  private socketsStale = true;
  private readonly up = new Map<string, boolean>();
  /**
   * The state compiled from the policy in force, as this process last applied it or found the
   * site holding it: a plan names the nft rules a change touches from it instead of validating
   * the policy in force again. Dropped with the rest of what is held.
   */
  applied: SiteState | undefined;
  /**
   * Each WireGuard interface's own private key, as the last read of its config found it, and
   * the public key it had then: with it an apply's rollback snapshot is made from the model
   * instead of reading every peer again over the socket. Interfaces with preshared keys are not
   * kept (the model does not hold those); nor any without a control socket.
   */
  private readonly wgKeys = new Map<
    string,
    { readonly privateKey: string; readonly publicKey: string }
  >();

  /** Takes one netlink event in; says which link came up, if one did. */
  observe(event: NetlinkEvent): { readonly cameUp?: string } {
    if (event.kind !== "link") {
      this.ipStale = true;
      return {};
    }
    this.ipStale = true;
    const was = this.up.get(event.name) ?? false;
    if (event.gone) {
      this.up.delete(event.name);
      return {};
    }
    this.up.set(event.name, event.up);
    return event.up && !was ? { cameUp: event.name } : {};
  }

  /** Whether the model last saw this link up. */
  isUp(name: string): boolean {
    return this.up.get(name) ?? false;
  }

  /** The listening sockets are read again at the next reconcile (a new policy may need ports). */
  socketsChanged(): void {
    this.socketsStale = true;
  }

  /** Everything is read from the tools at the next reconcile (the periodic full one). */
  forget(): void {
    this.held = undefined;
    this.applied = undefined;
    this.wgKeys.clear();
    this.ipStale = true;
    this.socketsStale = true;
  }

  /** The state an apply verified (or read and found in order): what the model holds now. */
  settle(state: LiveState, wanted: LiveWanted | undefined = this.held?.wanted): void {
    // Private keys (an apply's WireGuard configs) are not kept beyond the apply that read them.
    const { wireguardConfigs: _, ...kept } = state;
    if (wanted) this.held = { state: kept, wanted: { ...wanted, wireguardConfigs: false } };
    for (const l of state.links) this.up.set(l.name, l.up);
  }

  /** How a reconcile reads the site: only the parts that may have changed since. */
  readonly read: LiveReader = async (runner, protocol, wanting) => {
    const [p, want] = await Promise.all([protocol, wanting]);
    const held = this.held;
    const parts = this.stale(p, want);
    if (want.wireguardConfigs && !(runner.wireguard && this.configsHeld(want)))
      parts.add("wireguard");
    // Stale from the moment the read is asked for: an event during it counts for the next.
    if (parts.has("ip")) this.ipStale = false;
    if (parts.has("sockets")) this.socketsStale = false;
    // Any read of WireGuard over its sockets keeps the private keys, for the next apply.
    const keys = parts.has("wireguard") && runner.wireguard !== undefined;
    try {
      const asked = keys ? { ...want, wireguardConfigs: true } : want;
      const state = await readParts(runner, p, asked, parts, held?.state);
      if (state.wireguardConfigs) this.keepKeys(state);
      this.settle(state, want);
      if (!want.wireguardConfigs) {
        const { wireguardConfigs: _, ...kept } = state;
        return kept;
      }
      if (state.wireguardConfigs) return state;
      return { ...state, wireguardConfigs: this.configs(state.wireguard) };
    } catch (err) {
      this.forget();
      throw err;
    }
  };

  /**
   * How a status report reads the site: what the model holds, with what a report must show as
   * it is now read again — WireGuard's handshakes and byte counts (its control socket: no
   * process) and nftables' counters (one `nft`). It keeps nothing: a report read beside an
   * apply must not leave the model a half-changed site.
   */
  readonly peek: LiveReader = async (runner, protocol, wanting) => {
    const [p, want] = await Promise.all([protocol, wanting]);
    const parts = this.stale(p, want);
    parts.add("wireguard");
    parts.add("nft");
    return readParts(runner, p, want, parts, this.held?.state);
  };

  /** Whether the model can give the configs of every WireGuard interface `want` names. */
  private configsHeld(want: LiveWanted): boolean {
    const held = this.held?.state.wireguard;
    if (!held) return false;
    const names = new Set(want.wgNames);
    return held.every(
      (w) => !names.has(w.name) || this.wgKeys.get(w.name)?.publicKey === w.publicKey,
    );
  }

  private keepKeys(state: LiveState): void {
    this.wgKeys.clear();
    for (const w of state.wireguard) {
      const config = state.wireguardConfigs?.get(w.name)?.() ?? "";
      const privateKey = /^PrivateKey = (\S+)$/m.exec(config)?.[1];
      if (privateKey && !/^PresharedKey = /m.test(config))
        this.wgKeys.set(w.name, { privateKey, publicKey: w.publicKey });
    }
  }

  /**
   * The interfaces' configs as `wg showconf` would print them, made from the model when asked
   * (a rollback): the interface and its peers are never changed, so what is made later is
   * what they are now.
   */
  private configs(wireguard: readonly WgLive[]): Map<string, () => string> {
    const configs = new Map<string, () => string>();
    for (const w of wireguard) {
      const key = this.wgKeys.get(w.name);
      if (!key) continue;
      let made: string | undefined;
      configs.set(w.name, () => {
        made ??= configOfLive(w, key.privateKey);
        return made;
      });
    }
    return configs;
  }

  /** The parts to read from the tools again for `want`; the rest is held. */
  private stale(p: number, want: LiveWanted): Set<Part> {
    const held = this.held;
    const parts = new Set<Part>();
    if (!held) {
      for (const part of ["ip", "nft", "wireguard", "sysctls", "proxy"] as const) parts.add(part);
      return parts;
    }
    if (this.ipStale || held.wanted.protocol !== p) parts.add("ip");
    if (!covers(held.wanted.wgNames, want.wgNames)) parts.add("wireguard");
    // An apply's rollback snapshot keeps nft's own listing; after netpol's write only the
    // skeleton and the elements are known.
    if (want.wireguardConfigs && held.state.nft && held.state.nft.listing === undefined)
      parts.add("nft");
    if (!covers(held.wanted.sysctlKeys, want.sysctlKeys)) parts.add("sysctls");
    // Caddy sends no events and its user changes it through its own API: an apply plans against
    // what Caddy holds now, or a user's route is missed and the write is refused by If-Match.
    if (held.wanted.proxyAdmin !== want.proxyAdmin || (want.wireguardConfigs && want.proxyAdmin))
      parts.add("proxy");
    if (want.listeners && (!held.wanted.listeners || this.socketsStale)) parts.add("sockets");
    return parts;
  }
}

const covers = (had: readonly string[], want: readonly string[]) => {
  const set = new Set(had);
  return want.every((w) => set.has(w));
};
