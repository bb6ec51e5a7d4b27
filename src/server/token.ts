import { createHash, timingSafeEqual } from "node:crypto";
import { NetpolError } from "../errors.js";
import { readSmallFile } from "../system/small-file.js";

const MIN_TOKEN_LENGTH = 16;

/** A token is some 64 characters; a file far larger is not a token file. */
const MAX_TOKEN_FILE_BYTES = 4096;

/** Reads the API token, refusing a file others can read and a token too short to resist guessing. */
export async function readTokenFile(file: string): Promise<string> {
  const read = await readSmallFile(file, MAX_TOKEN_FILE_BYTES);
  if (!read.ok) {
    const problem =
      read.why === "missing"
        ? "does not exist"
        : read.why === "not a file"
          ? `is ${read.is}, not a file`
          : read.why === "too large"
            ? `is ${read.size} bytes, too large for a token`
            : `cannot be read (${read.why === "error" ? read.code : read.why})`;
    throw new NetpolError("NETPOL_E_USAGE", `token file ${file} ${problem}`);
  }
  if ((read.mode & 0o077) !== 0) {
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `token file ${file} is readable by others; run \`chmod 600 ${file}\``,
    );
  }
  const token = read.text.trim();
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `the token in ${file} is shorter than ${MIN_TOKEN_LENGTH} characters; make one with \`head -c 32 /dev/urandom | base64 > ${file}\``,
    );
  }
  return token;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Compares what is sent with `expected` in constant time (digests have one length whatever
 * was sent); `expected`'s digest is made once, not at every request.
 */
export function secretMatcher(expected: string): (sent: string) => boolean {
  const wanted = digest(expected);
  return (sent) => timingSafeEqual(wanted, digest(sent)) && sent.length > 0;
}

export function sameSecret(expected: string, sent: string): boolean {
  return secretMatcher(expected)(sent);
}

/** The token an Authorization header carries, or "" for none. */
export function bearerOf(header: string | undefined): string {
  // The auth scheme is case-insensitive (RFC 9110 §11.1): "bearer" is "Bearer".
  return /^bearer +(.+)$/i.exec(header ?? "")?.[1] ?? "";
}

export function tokenMatches(expected: string, header: string | undefined): boolean {
  return sameSecret(expected, bearerOf(header));
}
