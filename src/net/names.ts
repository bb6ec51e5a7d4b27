import { quoted } from "./quote.js";

/** Checks the kernel and wireguard-tools apply to names and keys, as policy messages. */

const IFNAME_MAX_BYTES = 15;

/** The kernel's dev_valid_name(): not empty, at most 15 bytes, no '/', ':' or white space, not "." or "..". */
export function interfaceNameProblem(name: string): string | undefined {
  if (name.length === 0) return "interface name is empty";
  const size = Buffer.byteLength(name, "utf8");
  if (size > IFNAME_MAX_BYTES) {
    return `interface name ${quoted(name)} is ${size} bytes; the kernel allows at most ${IFNAME_MAX_BYTES}`;
  }
  if (name === "." || name === "..") return `interface name ${quoted(name)} is reserved`;
  if (/[\s/:]/.test(name)) {
    return `interface name ${quoted(name)} contains '/', ':' or white space, which the kernel rejects`;
  }
  return undefined;
}

/** A WireGuard key is 32 bytes in standard base64: 43 characters and one '='. */
export function wireguardKeyProblem(key: string): string | undefined {
  if (!/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(key)) {
    return `${quoted(key)} is not a WireGuard public key (44 characters of base64, as printed by \`netpol keygen\` or \`wg pubkey\`)`;
  }
  return undefined;
}
