import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { open, stat } from "node:fs/promises";
import path from "node:path";
import { NetpolError } from "../errors.js";
import { wireguardKeyProblem } from "../net/names.js";

const b64 = (buf: Buffer) => buf.toString("base64");

/** A Curve25519 private key clamped the way `wg genkey` does, with its public key. */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const raw = randomBytes(32);
  raw[0] = (raw[0] as number) & 248;
  raw[31] = ((raw[31] as number) & 127) | 64;
  const privateKey = b64(raw);
  return { privateKey, publicKey: publicKeyOf(privateKey) };
}

export function publicKeyOf(privateKey: string): string {
  const d = Buffer.from(privateKey, "base64").toString("base64url");
  const key = createPrivateKey({ key: { kty: "OKP", crv: "X25519", d, x: "" }, format: "jwk" });
  const jwk = createPublicKey(key).export({ format: "jwk" });
  return b64(Buffer.from(jwk.x ?? "", "base64url"));
}

/**
 * Where a policy's key file names point: inside `keyDir` only, so a policy (or a request to
 * the server) cannot make netpol read an arbitrary file as a key.
 */
export function resolveKeyPath(keyDir: string, name: string): string {
  const root = path.resolve(keyDir);
  const full = path.resolve(root, name);
  if (full !== root && full.startsWith(root + path.sep)) return full;
  throw new NetpolError(
    "NETPOL_E_KEY_FILE",
    `key file ${JSON.stringify(name)} lies outside the key directory ${root}; keep keys there (see --key-dir)`,
  );
}

/** Reads a private key, refusing one that group or others may read. */
export async function readPrivateKey(keyDir: string, name: string): Promise<string> {
  const file = resolveKeyPath(keyDir, name);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    throw new NetpolError(
      "NETPOL_E_KEY_FILE",
      `key file ${file} does not exist; make it with \`netpol keygen --out ${file}\``,
    );
  }
  if ((info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8);
    throw new NetpolError(
      "NETPOL_E_KEY_FILE",
      `key file ${file} has mode ${mode}; others can read it. Run \`chmod 600 ${file}\``,
    );
  }
  const handle = await open(file, "r");
  const text = (await handle.readFile("utf8").finally(() => handle.close())).trim();
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
