import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { AddressSpec } from "../compile/desired.js";
import { formatCidr, parseCidr } from "../net/cidr.js";
import type { Ownership } from "../plan/types.js";

/** What netpol remembers about a namespace between runs: ownership and the policy in force. */
export interface ApplyRecord {
  readonly site: string;
  readonly policyHash: string;
  readonly appliedAt: string;
  readonly appliedBy: string;
  /** The routing protocol number its routes and rules carry (absent in older records). */
  readonly protocol?: number;
  readonly ownership: Ownership;
}

interface RecordFile {
  site: string;
  policyHash: string;
  appliedAt: string;
  appliedBy: string;
  protocol?: number;
  links: string[];
  addresses: { device: string; cidr: string }[];
  nftListing?: string;
}

export const EMPTY_OWNERSHIP: Ownership = { links: [], addresses: [] };

export function recordPath(stateDir: string, scope: string): string {
  return path.join(stateDir, `${scope}.json`);
}

export async function loadRecord(
  stateDir: string,
  scope: string,
): Promise<ApplyRecord | undefined> {
  const text = await readFile(recordPath(stateDir, scope), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const raw = JSON.parse(text) as RecordFile;
  const addresses = raw.addresses.flatMap((a): AddressSpec[] => {
    const cidr = parseCidr(a.cidr);
    return cidr.ok ? [{ device: a.device, cidr: cidr.value }] : [];
  });
  return {
    site: raw.site,
    policyHash: raw.policyHash,
    appliedAt: raw.appliedAt,
    appliedBy: raw.appliedBy,
    ...(raw.protocol !== undefined ? { protocol: raw.protocol } : {}),
    ownership: {
      links: raw.links,
      addresses,
      ...(raw.nftListing !== undefined ? { nftListing: raw.nftListing } : {}),
    },
  };
}

/** Written to a temporary file and renamed, so a crash never leaves half a record. */
export async function saveRecord(
  stateDir: string,
  scope: string,
  record: ApplyRecord,
  policyText: string,
): Promise<void> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const raw: RecordFile = {
    site: record.site,
    policyHash: record.policyHash,
    appliedAt: record.appliedAt,
    appliedBy: record.appliedBy,
    ...(record.protocol !== undefined ? { protocol: record.protocol } : {}),
    links: [...record.ownership.links],
    addresses: record.ownership.addresses.map((a) => ({
      device: a.device,
      cidr: formatCidr(a.cidr),
    })),
    ...(record.ownership.nftListing !== undefined
      ? { nftListing: record.ownership.nftListing }
      : {}),
  };
  await writeAtomically(policyPath(stateDir, scope), policyText);
  await writeAtomically(recordPath(stateDir, scope), `${JSON.stringify(raw, null, 2)}\n`);
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text, { mode: 0o600 });
  await rename(tmp, file);
}

/** The text of the policy last applied to this scope. */
export function policyPath(stateDir: string, scope: string): string {
  return path.join(stateDir, `${scope}.policy.yaml`);
}

export async function loadPolicyText(stateDir: string, scope: string): Promise<string | undefined> {
  return readFile(policyPath(stateDir, scope), "utf8").catch(() => undefined);
}

/** The record file as text, for putting it back exactly when an unconfirmed apply is reverted. */
export async function readRecordText(stateDir: string, scope: string): Promise<string | undefined> {
  return readFile(recordPath(stateDir, scope), "utf8").catch(() => undefined);
}

export async function writeRecordText(
  stateDir: string,
  scope: string,
  text: string | undefined,
): Promise<void> {
  const file = recordPath(stateDir, scope);
  if (text === undefined) {
    await rm(file, { force: true });
    return;
  }
  await writeAtomically(file, text);
}
