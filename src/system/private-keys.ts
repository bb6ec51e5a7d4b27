import type { SiteState } from "../compile/desired.js";
import { NetpolError } from "../errors.js";
import { publicKeyOf, readPrivateKey } from "./keys.js";

/**
 * Reads the private key of every WireGuard interface of a site, and its peers' preshared keys. The policy carries each
 * member's public key too, so a key file that belongs to someone else is caught here.
 */
export async function readPrivateKeys(
  state: SiteState,
  keyDir: string,
): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  for (const wg of state.wireguard) {
    const key = await readPrivateKey(keyDir, wg.privateKeyFile);
    if (publicKeyOf(key) !== wg.publicKey) {
      throw new NetpolError(
        "NETPOL_E_KEY_FILE",
        `the key in ${wg.privateKeyFile} does not match ${state.site}'s publicKey for ${wg.name}; its public key is ${publicKeyOf(key)}`,
      );
    }
    keys.set(wg.privateKeyFile, key);
    // A provider's preshared key: 32 random bytes, read with the same care (no public half).
    for (const peer of wg.peers) {
      if (peer.presharedKeyFile !== undefined)
        keys.set(peer.presharedKeyFile, await readPrivateKey(keyDir, peer.presharedKeyFile));
    }
  }
  return keys;
}
