import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { open, realpath } from "node:fs/promises";
import path from "node:path";
import { NetpolError } from "../errors.js";
import { wireguardKeyProblem } from "../net/names.js";
import { readSmallFile } from "./small-file.js";

const b64 = (buf: Buffer) => buf.toString("base64");

/** A Curve25519 private key clamped the way `wg genkey` does, with its public key. */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const raw = randomBytes(32);
  raw[0] = (raw[0] as number) & 248;
  raw[31] = ((raw[31] as number) & 127) | 64;
  const privateKey = b64(raw);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

/**
 * The last key derived, as it was: a resident checks the same key file against the policy at
 * every change, and deriving it is most of that check's work. Held in memory only, as
 * the key itself is.
 */
let derived: { readonly privateKey: string; readonly publicKey: string } | undefined;

export function publicKeyOf(privateKey: string): string {
  if (derived?.privateKey === privateKey) return derived.publicKey;
  const d = Buffer.from(privateKey, "base64").toString("base64url");
  const key = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" });
  const jwk = createPublicKey(key).export({ format: "jwk" });
  const publicKey = b64(Buffer.from(jwk.x ?? "", "base64url"));
  derived = { privateKey, publicKey };
  return publicKey;
}

/** True when `full` lies strictly below `root` (the key directory itself is no key file). */
function inside(root: string, full: string): boolean {
  return full !== root && full.startsWith(root + path.sep);
}

/**
 * Where a policy's key file names point: inside `keyDir` only, so a policy (or a request to
 * the server) cannot make netpol read an arbitrary file as a key.
 */
export function resolveKeyPath(keyDir: string, name: string): string {
  const root = path.resolve(keyDir);
  const full = path.resolve(root, name);
  if (inside(root, full)) return full;
  throw new NetpolError(
    "NETPOL_E_KEY_FILE",
    `key file ${JSON.stringify(name)} lies outside the key directory ${root}; keep keys there (see --key-dir)`,
  );
}

function missing(file: string): NetpolError {
  return new NetpolError(
    "NETPOL_E_KEY_FILE",
    `key file ${file} does not exist; make it with \`netpol keygen --out ${file}\``,
  );
}

/** A key file holds 45 bytes (base64 and a newline): anything past this is not a key file. */
export const MAX_KEY_FILE_BYTES = 4096;

/**
 * Reads a private key, refusing one that group or others may read. The name is checked as
 * written and again after following links: a link in the key directory that points out of it
 * is refused, and the file is opened with O_NOFOLLOW, so a link swapped in meanwhile is too.
 * Only a regular file of a key's size is read (see readSmallFile: a FIFO does not block).
 */
export async function readPrivateKey(keyDir: string, name: string): Promise<string> {
  const file = resolveKeyPath(keyDir, name);
  const root = await realpath(path.resolve(keyDir)).catch(() => path.resolve(keyDir));
  const real = await realpath(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") throw missing(file);
    throw new NetpolError("NETPOL_E_KEY_FILE", `cannot read key file ${file}: ${err.code}`);
  });
  const linkedOut = new NetpolError(
    "NETPOL_E_KEY_FILE",
    `key file ${file} is a link to ${real}, outside the key directory ${root}; put the key itself in the key directory`,
  );
  if (!inside(root, real)) throw linkedOut;
  const read = await readSmallFile(real, MAX_KEY_FILE_BYTES, { noFollow: true });
  if (!read.ok) {
    if (read.why === "missing") throw missing(file);
    if (read.why === "link") throw linkedOut;
    const problem =
      read.why === "not a file"
        ? `is ${read.is}, not a file`
        : read.why === "too large"
          ? `is ${read.size} bytes; a WireGuard key file holds 45`
          : `cannot be read (${read.code})`;
    throw new NetpolError(
      "NETPOL_E_KEY_FILE",
      `key file ${file} ${problem}; put the key there with \`netpol keygen --out ${file}\` (after removing what is there)`,
    );
  }
  if ((read.mode & 0o077) !== 0) {
    const mode = (read.mode & 0o777).toString(8);
    throw new NetpolError(
      "NETPOL_E_KEY_FILE",
      `key file ${file} has mode ${mode}; others can read it. Run \`chmod 600 ${file}\``,
    );
  }
  const text = read.text.trim();
  if (wireguardKeyProblem(text) !== undefined) {
    throw new NetpolError(
      "NETPOL_E_KEY_FILE",
      `key file ${file} does not hold a WireGuard private key; make one with \`netpol keygen --out ${file}\``,
    );
  }
  return text;
}

/** Creates the file with mode 0600 from the start, never widening an existing file's mode. */
export async function writePrivateKey(file: string, privateKey: string): Promise<void> {
  const handle = await open(file, "wx", 0o600).catch((err: NodeJS.ErrnoException) => {
    const why =
      err.code === "EEXIST"
        ? "it already exists; remove it first or pick another name"
        : err.message;
    throw new NetpolError("NETPOL_E_USAGE", `cannot write key file ${file}: ${why}`);
  });
  await handle.writeFile(`${privateKey}\n`).finally(() => handle.close());
}
