import { readFile, stat } from "node:fs/promises";
import { NetpolError } from "../../errors.js";
import type { EtcdConnection } from "./transport.js";

/** Where the credentials of a connection to etcd come from: files, never argv. */
export interface EtcdFiles {
  readonly endpoints: readonly string[];
  readonly cacert?: string;
  readonly cert?: string;
  /** The client certificate's key: mode 0600. */
  readonly key?: string;
  readonly user?: string;
  /** Holds the user's password: mode 0600. */
  readonly passwordFile?: string;
}

async function readSecret(file: string, what: string): Promise<string> {
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new NetpolError("NETPOL_E_USAGE", `${what} ${file} does not exist`);
  if ((info.mode & 0o077) !== 0)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `${what} ${file} is readable by others; run \`chmod 600 ${file}\``,
    );
  return readFile(file, "utf8");
}

async function readPublic(file: string, what: string): Promise<Buffer> {
  return readFile(file).catch(() => {
    throw new NetpolError("NETPOL_E_USAGE", `${what} ${file} cannot be read`);
  });
}

const URL_SHAPE = /^https?:\/\/[^\s/?#]+\/?$/;

/** Reads the files a connection names; every mistake is one clear usage error. */
export async function connectionFrom(files: EtcdFiles): Promise<EtcdConnection> {
  const endpoints = files.endpoints
    .flatMap((e) => e.split(","))
    .map((e) => e.trim())
    .filter(Boolean);
  if (endpoints.length === 0)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      "name the etcd members: --etcd https://192.0.2.10:2379,…",
    );
  const bad = endpoints.find((e) => !URL_SHAPE.test(e));
  if (bad)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `--etcd takes client URLs such as https://192.0.2.10:2379, not ${bad}`,
    );
  const tlsFiles = [files.cacert, files.cert, files.key].filter((f) => f !== undefined).length;
  if (tlsFiles > 0 && tlsFiles < 3)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      "TLS to etcd takes all three of --cacert, --cert and --key",
    );
  if ((files.user === undefined) !== (files.passwordFile === undefined))
    throw new NetpolError(
      "NETPOL_E_USAGE",
      "etcd authentication takes both --user and --password-file",
    );
  const https = endpoints.every((e) => e.startsWith("https:"));
  if (tlsFiles === 3 && !https)
    throw new NetpolError(
      "NETPOL_E_USAGE",
      "with a client certificate, every --etcd URL must be https://",
    );
  return {
    endpoints,
    ...(files.cacert && files.cert && files.key
      ? {
          tls: {
            ca: await readPublic(files.cacert, "CA certificate"),
            cert: await readPublic(files.cert, "client certificate"),
            key: Buffer.from(await readSecret(files.key, "client key")),
          },
        }
      : {}),
    ...(files.user && files.passwordFile
      ? {
          auth: {
            user: files.user,
            password: (await readSecret(files.passwordFile, "password file")).trim(),
          },
        }
      : {}),
  };
}
