import type { LiveState } from "../plan/types.js";
import { readIp } from "../system/iproute2/iproute2.js";
import { readNft } from "../system/nftables.js";
import type { Runner } from "../system/runner.js";
import { readSysctls } from "../system/sysctl.js";
import { readWireguard } from "../system/wireguard.js";

/** What to read besides links, addresses, routes and rules (always read whole). */
export interface LiveWanted {
  /** Routes and rules with this protocol number are netpol's. */
  readonly protocol: number;
  readonly sysctlKeys: readonly string[];
}

/** Links that can be WireGuard here: the kernel's, or wireguard-go's tun device. */
const WG_KINDS = new Set(["wireguard", "tun"]);

/**
 * Reads what the diff needs, with a fixed number of processes: ip (3), nft (1–2), wg (0–1),
 * sysctl (0–1), however many routes, rules and peers there are.
 */
export async function readLive(runner: Runner, want: LiveWanted): Promise<LiveState> {
  const ip = await readIp(runner, want.protocol);
  const nft = await readNft(runner);
  // wg lists every namespace's wireguard-go interfaces: keep the ones that live here.
  const wgNames = new Set(ip.links.filter((l) => WG_KINDS.has(l.kind ?? "")).map((l) => l.name));
  const wireguard = await readWireguard(runner, wgNames);
  const sysctls = await readSysctls(runner, [...new Set(want.sysctlKeys)]);
  return { ...ip, nftListing: nft.listing, wireguard, sysctls };
}
