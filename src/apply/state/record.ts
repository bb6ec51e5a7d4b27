import { stat } from "node:fs/promises";
import * as z from "zod";
import type { SiteNetwork } from "../../compile/desired.js";
import type { LiveLink } from "../../plan/live.js";
import { parseNftListing } from "../../plan/nft-table.js";
import type { Ownership } from "../../plan/types.js";
import { policyHash } from "../../policy/hash.js";
import {
  corrupt,
  parseState,
  readText,
  removeState,
  type StateFiles,
  stateFile,
  writeState,
} from "./files.js";
import {
  addressEntry,
  fromAddress,
  networkText,
  siteNetworks,
  sysctlEntry,
  toAddress,
} from "./schemas.js";

/** What netpol remembers about a namespace between runs: ownership and the policy in force. */
export interface ApplyRecord {
  readonly site: string;
  readonly policyHash: string;
  /** The policy text last applied: what `status`, `serve` and `watch` hold the site to. */
  readonly policyText: string;
  readonly appliedAt: string;
  readonly appliedBy: string;
  /** The routing protocol number its routes and rules carry. */
  readonly protocol?: number;
  readonly ownership: Ownership;
  /**
   * The fail-closed networks of the policy in force, and those that left it and are still
   * guarded (compile/retired.ts): the next apply guards what leaves.
   */
  readonly guarded?: readonly SiteNetwork[];
}

const RECORD = ".json";

const recordSchema = z.strictObject({
  version: z.literal(2),
  site: z.string().min(1),
  policyHash: z.string().regex(/^[0-9a-f]{64}$/),
  policyText: z.string(),
  appliedAt: z.string(),
  appliedBy: z.string(),
  protocol: z.number().int().min(1).max(255).optional(),
  /** Links netpol made; the kernel carries their mark (ifalias), the index is for humans. */
  links: z.array(z.strictObject({ name: z.string().min(1), ifindex: z.number().int() })),
  addresses: z.array(addressEntry),
  sysctls: z.array(sysctlEntry),
  nftSkeleton: z.string().optional(),
  /** Written before the skeleton: the whole listing, of which the skeleton is read. */
  nftListing: z.string().optional(),
  guarded: siteNetworks.optional(),
});

function nftSkeletonOf(raw: z.infer<typeof recordSchema>): { nftSkeleton?: string } {
  const skeleton = raw.nftSkeleton ?? (raw.nftListing && parseNftListing(raw.nftListing).skeleton);
  return skeleton !== undefined ? { nftSkeleton: skeleton } : {};
}

export function recordPath(files: StateFiles): string {
  return stateFile(files, RECORD);
}

/** The record file as it is now (inode, size, modification time); undefined: there is none. */
export function recordStamp(files: StateFiles): Promise<string | undefined> {
  return stat(recordPath(files)).then(
    (s) => `${s.ino} ${s.size} ${s.mtimeMs}`,
    () => undefined,
  );
}

interface RecordRead {
  readonly record: ApplyRecord;
  readonly text: string;
}

/**
 * The record each file last held as this process wrote it, by its stamp: a resident plans
 * each change from the record its last change wrote, which at 10,000 objects is megabytes of
 * policy text to parse and hash again. Any other write (another process's, a hand edit, a
 * revert) gives the file another stamp, and it is read.
 */
const written = new Map<string, { readonly stamp: string; readonly read: RecordRead }>();

/**
 * The record and the file's text, which an apply keeps to put the file back exactly when it is
 * reverted: one read, so the record (which holds the policy text) is not parsed twice.
 */
export async function readRecord(files: StateFiles): Promise<RecordRead | undefined> {
  const file = recordPath(files);
  const held = written.get(file);
  if (held) {
    if ((await recordStamp(files)) === held.stamp) return held.read;
    written.delete(file);
  }
  const text = await readText(file);
  if (text === undefined) return undefined;
  const raw = parseState(files, file, "ownership record", recordSchema, text);
  if (policyHash(raw.policyText) !== raw.policyHash)
    throw corrupt(files, file, "ownership record", "the policy text does not match its hash");
  return { record: recordOf(raw), text };
}

function recordOf(raw: z.infer<typeof recordSchema>): ApplyRecord {
  return {
    site: raw.site,
    policyHash: raw.policyHash,
    policyText: raw.policyText,
    appliedAt: raw.appliedAt,
    appliedBy: raw.appliedBy,
    ...(raw.protocol !== undefined ? { protocol: raw.protocol } : {}),
    ...(raw.guarded && raw.guarded.length > 0 ? { guarded: raw.guarded } : {}),
    ownership: {
      links: raw.links.map((l) => l.name),
      addresses: raw.addresses.map(toAddress),
      sysctls: raw.sysctls,
      ...nftSkeletonOf(raw),
    },
  };
}

export async function loadRecord(files: StateFiles): Promise<ApplyRecord | undefined> {
  return (await readRecord(files))?.record;
}

/** The record as the file will hold it; `links` gives each owned link's index. */
function rawOf(record: ApplyRecord, links: readonly LiveLink[]): z.input<typeof recordSchema> {
  const { ownership } = record;
  const raw: z.input<typeof recordSchema> = {
    version: 2,
    site: record.site,
    policyHash: record.policyHash,
    policyText: record.policyText,
    appliedAt: record.appliedAt,
    appliedBy: record.appliedBy,
    ...(record.protocol !== undefined ? { protocol: record.protocol } : {}),
    links: ownership.links.map((name) => ({
      name,
      ifindex: links.find((l) => l.name === name)?.ifindex ?? 0,
    })),
    addresses: ownership.addresses.map(fromAddress),
    sysctls: [...(ownership.sysctls ?? [])],
    ...(ownership.nftSkeleton !== undefined ? { nftSkeleton: ownership.nftSkeleton } : {}),
    ...(record.guarded && record.guarded.length > 0
      ? { guarded: record.guarded.map(networkText) }
      : {}),
  };
  return raw;
}

/** Whether the record's guarded networks are these (a change rewrites the record). */
export function sameNetworks(
  kept: readonly SiteNetwork[] | undefined,
  now: readonly SiteNetwork[],
): boolean {
  const text = (list: readonly SiteNetwork[]) => list.map(networkText).join("\n");
  return (kept ?? []).length === now.length && text(kept ?? []) === text(now);
}

export async function writeRecordText(files: StateFiles, text: string | undefined): Promise<void> {
  if (text === undefined) await removeState(recordPath(files));
  else await writeState(recordPath(files), text);
}

/**
 * Writes `record` and keeps what the next readRecord of the file would find,
 * for as long as the file is the one written (see `written`).
 */
export async function writeRecord(
  files: StateFiles,
  record: ApplyRecord,
  links: readonly LiveLink[],
): Promise<void> {
  const file = recordPath(files);
  written.delete(file);
  const raw = rawOf(record, links);
  const text = `${JSON.stringify(raw, null, 2)}\n`;
  await writeState(file, text);
  const stamp = await recordStamp(files);
  // The record as read back from the text: the schema's output, from the same value.
  if (stamp !== undefined)
    written.set(file, { stamp, read: { record: recordOf(recordSchema.parse(raw)), text } });
}
