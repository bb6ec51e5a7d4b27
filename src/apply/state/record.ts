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
  applyEdit,
  baseFile,
  basesOf,
  editFrom,
  INLINE_TEXT_MAX,
  type PolicyBase,
  type PolicyEdit,
  policyEdit,
  removeBases,
  worthKeeping,
} from "./record-base.js";
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

const HASH = /^[0-9a-f]{64}$/;

const common = {
  site: z.string().min(1),
  policyHash: z.string().regex(HASH),
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
};

/**
 * Version 2 holds the policy text inline; version 3 (a text longer than INLINE_TEXT_MAX) a base
 * file's hash and the edit that makes the text from it (record-base.ts). Both are read.
 */
const recordSchema = z.discriminatedUnion("version", [
  z.strictObject({ version: z.literal(2), ...common, policyText: z.string() }),
  z.strictObject({
    version: z.literal(3),
    ...common,
    policyBase: z.string().regex(HASH),
    policyEdit,
  }),
]);
type RawRecord = z.infer<typeof recordSchema>;

function nftSkeletonOf(raw: RawRecord): { nftSkeleton?: string } {
  const skeleton = raw.nftSkeleton ?? (raw.nftListing && parseNftListing(raw.nftListing).skeleton);
  return skeleton !== undefined ? { nftSkeleton: skeleton } : {};
}

export function recordPath(files: StateFiles): string {
  return stateFile(files, RECORD);
}

/** The record file as it is now (inode, size, modification time); undefined: there is none. */
export function recordStamp(files: StateFiles): Promise<string | undefined> {
  return stampOf(recordPath(files));
}

const stampOf = (file: string) =>
  stat(file).then(
    (s) => `${s.ino} ${s.size} ${s.mtimeMs}`,
    () => undefined,
  );

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
const written = new Map<
  string,
  { readonly stamp: string; readonly read: RecordRead; readonly base?: PolicyBase }
>();

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
  const policyText = await policyTextOf(files, file, raw);
  if (policyHash(policyText) !== raw.policyHash)
    throw corrupt(files, file, "ownership record", "the policy text does not match its hash");
  return { record: recordOf(raw, policyText), text };
}

/** The policy text a record holds inline, or makes of its base file and edit. */
async function policyTextOf(files: StateFiles, file: string, raw: RawRecord): Promise<string> {
  if (raw.version === 2) return raw.policyText;
  const base = await readText(baseFile(files, raw.policyBase));
  if (base === undefined)
    throw corrupt(
      files,
      file,
      "ownership record",
      `its policy's base file ${baseFile(files, raw.policyBase)} is missing`,
    );
  const text = applyEdit(base, raw.policyEdit);
  if (text === undefined)
    throw corrupt(files, file, "ownership record", "its policy's edit does not fit its base file");
  return text;
}

function recordOf(raw: RawRecord, policyText: string): ApplyRecord {
  return {
    site: raw.site,
    policyHash: raw.policyHash,
    policyText,
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

/**
 * The record as the file will hold it; `links` gives each owned link's index. With `base`, the
 * policy text is the edit that makes it from that base; without, it is inline.
 */
function rawOf(
  record: ApplyRecord,
  links: readonly LiveLink[],
  base?: { readonly hash: string; readonly edit: PolicyEdit },
): z.input<typeof recordSchema> {
  const { ownership } = record;
  const text = base
    ? { version: 3 as const, policyBase: base.hash, policyEdit: base.edit }
    : { version: 2 as const, policyText: record.policyText };
  const raw: z.input<typeof recordSchema> = {
    ...text,
    site: record.site,
    policyHash: record.policyHash,
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

/**
 * Puts a record's file text back as it was (a rollback, a revert), or removes the record and its
 * base files. A text put back names a base file only if it was the record's before the write it
 * undoes, and writeRecord keeps that one.
 */
export async function writeRecordText(files: StateFiles, text: string | undefined): Promise<void> {
  if (text !== undefined) return writeState(recordPath(files), text);
  await removeState(recordPath(files));
  await removeBases(files, []);
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
  const held = written.get(file);
  written.delete(file);
  const policy = record.policyText;
  let base: PolicyBase | undefined;
  let edit: PolicyEdit | undefined;
  if (policy.length > INLINE_TEXT_MAX) {
    // The base this process last wrote, while the file is the one it wrote (so the base is kept).
    const known = held?.base && (await recordStamp(files)) === held.stamp ? held.base : undefined;
    edit = known && editFrom(known.text, policy);
    if (known && edit && worthKeeping(edit, policy)) base = known;
    else {
      base = { hash: record.policyHash, text: policy };
      edit = { at: 0, cut: 0, text: "" };
      const replaced = known?.hash ?? (await replacedBase(files));
      await writeState(baseFile(files, base.hash), policy);
      await writeNamed(file, rawOf(record, links, { hash: base.hash, edit }), record, base);
      // The base of the record just replaced stays: a rollback or revert may put it back.
      await removeBases(files, [base.hash, ...(replaced ? [replaced] : [])]);
      return;
    }
  }
  const raw = rawOf(record, links, base && edit && { hash: base.hash, edit });
  await writeNamed(file, raw, record, base);
}

/** Writes the record's file and keeps what the next readRecord of it would find. */
async function writeNamed(
  file: string,
  raw: z.input<typeof recordSchema>,
  record: ApplyRecord,
  base: PolicyBase | undefined,
): Promise<void> {
  const text = `${JSON.stringify(raw, null, 2)}\n`;
  await writeState(file, text);
  const stamp = await stampOf(file);
  // The record as read back from the text: the schema's output, from the same value.
  const read = { record: recordOf(recordSchema.parse(raw), record.policyText), text };
  if (stamp !== undefined) written.set(file, { stamp, read, ...(base ? { base } : {}) });
}

/**
 * The base file the record on disk names, before a write replaces it; read only when other base
 * files are there to be removed (a record this process did not write, or one of version 2).
 */
async function replacedBase(files: StateFiles): Promise<string | undefined> {
  if ((await basesOf(files)).length === 0) return undefined;
  const text = await readText(recordPath(files)).catch(() => undefined);
  try {
    const raw = text === undefined ? undefined : JSON.parse(text);
    return typeof raw?.policyBase === "string" ? raw.policyBase : undefined;
  } catch {
    return undefined;
  }
}
