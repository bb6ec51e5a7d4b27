import type { WireguardSpec } from "../compile/desired.js";
import { formatCidr } from "../net/cidr.js";
import { formatEndpoint } from "../net/host-port.js";
import type { WgConfig } from "../system/wireguard-uapi.js";

/** The text of a key file readPrivateKeys read, by the name the policy gives it. */
function keyIn(keys: ReadonlyMap<string, string>, file: string): string {
  const key = keys.get(file);
  if (key === undefined) throw new Error(`unreachable: no key read for ${file}`);
  return key;
}

/**
 * A config for `wg setconf`/`wg syncconf` (not wg-quick: addresses and MTU are ip's job).
 * `keys` holds the private and preshared keys read from the key directory, by file name.
 */
export function renderWireguard(spec: WireguardSpec, keys: ReadonlyMap<string, string>): string {
  const lines = ["[Interface]", `PrivateKey = ${keyIn(keys, spec.privateKeyFile)}`];
  if (spec.listenPort !== undefined) lines.push(`ListenPort = ${spec.listenPort}`);
  for (const peer of spec.peers) {
    lines.push("", `# site ${peer.site}`, "[Peer]", `PublicKey = ${peer.publicKey}`);
    if (peer.presharedKeyFile !== undefined)
      lines.push(`PresharedKey = ${keyIn(keys, peer.presharedKeyFile)}`);
    lines.push(`AllowedIPs = ${peer.allowedIps.map(formatCidr).join(", ")}`);
    if (peer.endpoint) lines.push(`Endpoint = ${formatEndpoint(peer.endpoint)}`);
    if (peer.keepalive !== undefined) lines.push(`PersistentKeepalive = ${peer.keepalive}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The same config as data, as WireGuard's control socket is given it (no text to parse). */
export function wireguardConfig(spec: WireguardSpec, keys: ReadonlyMap<string, string>): WgConfig {
  return {
    privateKey: keyIn(keys, spec.privateKeyFile),
    listenPort: spec.listenPort,
    peers: spec.peers.map((peer) => ({
      publicKey: peer.publicKey,
      allowedIps: peer.allowedIps.map(formatCidr),
      endpoint: peer.endpoint ? formatEndpoint(peer.endpoint) : undefined,
      keepalive: peer.keepalive,
      ...(peer.presharedKeyFile !== undefined
        ? { presharedKey: keyIn(keys, peer.presharedKeyFile) }
        : {}),
    })),
  };
}
