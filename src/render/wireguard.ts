import type { WireguardSpec } from "../compile/desired.js";
import { formatCidr } from "../net/cidr.js";
import { formatEndpoint } from "../net/host-port.js";

/** A config for `wg setconf`/`wg syncconf` (not wg-quick: addresses and MTU are ip's job). */
export function renderWireguard(spec: WireguardSpec, privateKey: string): string {
  const lines = ["[Interface]", `PrivateKey = ${privateKey}`];
  if (spec.listenPort !== undefined) lines.push(`ListenPort = ${spec.listenPort}`);
  for (const peer of spec.peers) {
    lines.push("", `# site ${peer.site}`, "[Peer]", `PublicKey = ${peer.publicKey}`);
    lines.push(`AllowedIPs = ${peer.allowedIps.map(formatCidr).join(", ")}`);
    if (peer.endpoint) lines.push(`Endpoint = ${formatEndpoint(peer.endpoint)}`);
    if (peer.keepalive !== undefined) lines.push(`PersistentKeepalive = ${peer.keepalive}`);
  }
  return `${lines.join("\n")}\n`;
}
