import { NetpolError } from "../errors.js";
import type { Desired, Head } from "./documents.js";
import { headSchema, readValue } from "./documents.js";
import type { Etcd, Kv, TxnOp } from "./etcd/client.js";
import { desiredKey, HEAD, KEEP_POLICIES, policyKey } from "./keys.js";
import { pack } from "./packed.js";
import type { Prepared } from "./prepare.js";

/** The head etcd holds and the revision of its key, which a publish compares against. */
export interface HeadRead {
  readonly head: Head | undefined;
  readonly modRevision: number;
}

export async function readHead(etcd: Etcd): Promise<HeadRead> {
  const { kv } = await etcd.get(HEAD);
  return headOf(kv);
}

function headOf(kv: Kv | undefined): HeadRead {
  if (!kv) return { head: undefined, modRevision: 0 };
  const head = readValue(headSchema, kv.value);
  if (!head)
    throw new NetpolError(
      "NETPOL_E_ETCD_FAILED",
      `${HEAD} in etcd is not a head this netpol reads; it was written by hand or by another version`,
    );
  return { head, modRevision: kv.modRevision };
}

export interface PublishOptions {
  /** The revision the user reviewed (`--expect`); by default the one this publish read first. */
  readonly expect?: number;
  readonly by: string;
  readonly rollbackOf?: number;
  readonly now?: Date;
}

export interface Published {
  readonly serial: number;
  /** The same text was in force already: nothing new was published. */
  readonly already: boolean;
  /** Sites that received their part. */
  readonly sites: number;
  /** A newer publish took over while the sites were being written: it writes them all. */
  readonly superseded: boolean;
}

/** Ops per transaction and bytes per request: below etcd's defaults (128 ops, 1.5 MiB). */
const BATCH_OPS = 64;
const BATCH_BYTES = 1024 * 1024;

/**
 * Publishes a prepared policy as one revision: a compare-and-swap of the head against the
 * revision the user based it on, with the policy text, in one transaction. Then each site's
 * part is written, every batch guarded by the head it belongs to, so a publish that another
 * overtook stops rather than overwrite newer parts. Publishing the text already in force
 * publishes nothing and completes the sites' parts (a publish interrupted half way is finished
 * by running it again).
 */
export async function publish(
  etcd: Etcd,
  prepared: Prepared,
  opts: PublishOptions,
): Promise<Published> {
  const { head, modRevision } = await readHead(etcd);
  const seen = head?.serial ?? 0;
  if (opts.expect !== undefined && opts.expect !== seen) throw conflict(head, opts.expect);
  if (head && head.hash === prepared.hash && opts.rollbackOf === undefined) {
    const written = await writeParts(etcd, prepared, head, modRevision);
    return { serial: head.serial, already: true, ...written };
  }
  const serial = seen + 1;
  const next: Head = {
    serial,
    hash: prepared.hash,
    publishedAt: (opts.now ?? new Date()).toISOString(),
    publishedBy: opts.by,
    sites: [...prepared.sites.keys()],
    waves: prepared.rollout.waves.map((w) => [...w]),
    failureBudget: prepared.rollout.failureBudget,
    healthSeconds: prepared.rollout.healthSeconds,
    ...(opts.rollbackOf !== undefined ? { rollbackOf: opts.rollbackOf } : {}),
  };
  const pruned: TxnOp[] =
    serial > KEEP_POLICIES ? [{ delete: { key: policyKey(serial - KEEP_POLICIES) } }] : [];
  const committed = await etcd.txn(
    [{ key: HEAD, target: "MOD", revision: modRevision }],
    [
      { put: { key: HEAD, value: JSON.stringify(next) } },
      { put: { key: policyKey(serial), value: pack(prepared.text) } },
      ...pruned,
    ],
    [{ range: { key: HEAD } }],
  );
  if (!committed.succeeded) throw conflict(headOf(committed.ranges[0]?.[0]).head, seen);
  const written = await writeParts(etcd, prepared, next, committed.revision);
  return { serial, already: false, ...written };
}

function conflict(head: Head | undefined, based: number): NetpolError {
  const now = head
    ? `revision ${head.serial} (published by ${head.publishedBy} at ${head.publishedAt})`
    : "no revision";
  return new NetpolError(
    "NETPOL_E_PUBLISH_CONFLICT",
    `nothing published: etcd holds ${now}, and this publish was based on revision ${based}; look at \`netpol rollout status\`, then publish again`,
  );
}

/** Each site's desired value for `head`. */
export function desiredOf(prepared: Prepared, head: Head, site: string): Desired {
  const part = prepared.sites.get(site);
  if (!part) throw new Error(`unreachable: no part for ${site}`);
  const wave = Math.max(
    0,
    head.waves.findIndex((w) => w.includes(site)),
  );
  return {
    serial: head.serial,
    wave,
    after: head.waves[wave - 1] ?? [],
    failureBudget: head.failureBudget,
    healthSeconds: head.healthSeconds,
    text: part.text,
    hash: part.hash,
    state: part.state,
    peers: [...part.peers],
  };
}

async function writeParts(
  etcd: Etcd,
  prepared: Prepared,
  head: Head,
  headRevision: number,
): Promise<{ sites: number; superseded: boolean }> {
  const batches: TxnOp[][] = [[]];
  let bytes = 0;
  for (const site of head.sites) {
    const value = pack(JSON.stringify(desiredOf(prepared, head, site)));
    const batch = batches.at(-1) ?? [];
    if (batch.length >= BATCH_OPS || (batch.length > 0 && bytes + value.length > BATCH_BYTES)) {
      batches.push([]);
      bytes = 0;
    }
    batches.at(-1)?.push({ put: { key: desiredKey(site), value } });
    bytes += value.length;
  }
  let sites = 0;
  for (const batch of batches) {
    if (batch.length === 0) continue;
    const r = await etcd.txn([{ key: HEAD, target: "MOD", revision: headRevision }], batch);
    if (!r.succeeded) return { sites, superseded: true };
    sites += batch.length;
  }
  return { sites, superseded: false };
}
