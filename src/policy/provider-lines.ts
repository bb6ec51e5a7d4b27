import { formatAddress, formatCidr } from "../net/cidr.js";
import { formatEndpoint } from "../net/host-port.js";
import type { ProviderConf } from "./provider-conf.js";

/** The key files `netpol import-provider` wrote, by the names the policy gives them. */
export interface ProviderKeyFiles {
  readonly privateKeyFile: string;
  readonly presharedKeyFile?: string;
}

const list = (items: readonly string[]) => `[${items.map((i) => JSON.stringify(i)).join(", ")}]`;

/**
 * The policy lines for one provider, to go under `sites.SITE` (indented for it): the conf
 * without its keys, which stay in the key directory. Pure; the command prints them.
 */
export function providerLines(
  name: string,
  conf: ProviderConf,
  publicKey: string,
  files: ProviderKeyFiles,
): string {
  const lines = [
    "    providers:",
    `      - name: ${name}`,
    `        address: ${list(conf.addresses.map(formatCidr))}`,
    `        publicKey: ${publicKey}`,
    `        privateKeyFile: ${JSON.stringify(files.privateKeyFile)}`,
  ];
  if (conf.dns.length > 0) lines.push(`        dns: ${list(conf.dns.map(formatAddress))}`);
  if (conf.mtu !== undefined) lines.push(`        mtu: ${conf.mtu}`);
  if (conf.peer.keepalive !== undefined) lines.push(`        keepalive: ${conf.peer.keepalive}`);
  lines.push(
    "        peer:",
    `          publicKey: ${conf.peer.publicKey}`,
    `          endpoint: ${JSON.stringify(formatEndpoint(conf.peer.endpoint))}`,
  );
  if (files.presharedKeyFile !== undefined)
    lines.push(`          presharedKeyFile: ${JSON.stringify(files.presharedKeyFile)}`);
  return `${lines.join("\n")}\n`;
}
