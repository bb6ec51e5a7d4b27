import type { SiteState } from "../compile/desired.js";
import type { LiveState, Ownership } from "../plan/types.js";
import { readCaddy } from "../system/caddy/admin.js";
import { readIp } from "../system/iproute2/iproute2.js";
import { readNft } from "../system/nftables.js";
import type { Runner } from "../system/runner.js";
import { readSysctls } from "../system/sysctl.js";
import { readWireguard } from "../system/wireguard.js";

/**
 * Reads what the diff needs, with a fixed number of processes: ip (3), nft (1–2), wg (0–1),
 * sysctl (0–1), curl (0–1: the running Caddy's config), however many routes, rules and peers
 * there are.
 */
export async function readLive(
  runner: Runner,
  desired: SiteState,
  owned: Ownership,
): Promise<LiveState> {
  const ip = await readIp(runner, desired.protocol);
  const nft = await readNft(runner);
  const names = new Set(ip.links.map((l) => l.name));
  const wgNames = new Set(
    [...desired.wireguard.map((w) => w.name), ...owned.links].filter((n) => names.has(n)),
  );
  const wireguard = await readWireguard(runner, wgNames);
  const sysctls = await readSysctls(
    runner,
    desired.sysctls.map(([k]) => k),
  );
  const proxy = desired.proxy && (await readCaddy(runner, desired.proxy.settings.adminListen));
  return { ...ip, nftListing: nft.listing, wireguard, sysctls, ...(proxy ? { proxy } : {}) };
}
