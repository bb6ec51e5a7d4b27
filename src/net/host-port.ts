import { type Family, formatAddress } from "./cidr.js";

/** `addr:port`, with IPv6 addresses in brackets. */
export function formatHostPort(addr: { family: Family; address: bigint }, port: number): string {
  const host = formatAddress(addr);
  return addr.family === 4 ? `${host}:${port}` : `[${host}]:${port}`;
}

/** A WireGuard endpoint as written in configs and shown by `wg`: `host:port`, IPv6 in brackets. */
export function formatEndpoint(endpoint: { host: string; port: number }): string {
  return endpoint.host.includes(":")
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`;
}
