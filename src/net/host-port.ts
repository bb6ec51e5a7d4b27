import { type Family, formatAddress } from "./cidr.js";

/** `addr:port`, with IPv6 addresses in brackets. */
export function formatHostPort(addr: { family: Family; address: bigint }, port: number): string {
  const host = formatAddress(addr);
  return addr.family === 4 ? `${host}:${port}` : `[${host}]:${port}`;
}
