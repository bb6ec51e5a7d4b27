import type { Command } from "commander";
import { Etcd } from "../fleet/etcd/client.js";
import { connectionFrom, type EtcdFiles } from "../fleet/etcd/credentials.js";

export interface EtcdOptions {
  readonly etcd?: string[];
  readonly cacert?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly user?: string;
  readonly passwordFile?: string;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** --etcd and its credentials, the same on every fleet command; NETPOL_ETCD gives the members. */
export function etcdOptions(command: Command): Command {
  return command
    .option(
      "--etcd <urls>",
      "etcd client URLs, comma-separated or repeated (or $NETPOL_ETCD)",
      collect,
    )
    .option("--cacert <file>", "the CA certificate etcd's members present")
    .option("--cert <file>", "this client's certificate (TLS client authentication)")
    .option("--key <file>", "this client's certificate key (mode 0600)")
    .option("--user <name>", "etcd user (authentication and RBAC)")
    .option("--password-file <file>", "file holding the etcd user's password (mode 0600)");
}

export async function etcdFrom(opts: EtcdOptions): Promise<Etcd> {
  const files: EtcdFiles = {
    endpoints: opts.etcd ?? (process.env.NETPOL_ETCD ? [process.env.NETPOL_ETCD] : []),
    ...(opts.cacert ? { cacert: opts.cacert } : {}),
    ...(opts.cert ? { cert: opts.cert } : {}),
    ...(opts.key ? { key: opts.key } : {}),
    ...(opts.user ? { user: opts.user } : {}),
    ...(opts.passwordFile ? { passwordFile: opts.passwordFile } : {}),
  };
  return new Etcd(await connectionFrom(files));
}
