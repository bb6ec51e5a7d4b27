import { readdir, rm } from "node:fs/promises";
import * as z from "zod";
import { type StateFiles, stateFile } from "./files.js";

/**
 * A big policy's text in the record: a base file beside it, written whole now and then, and the
 * edit that makes the text from it, written with each record. At 10,000 objects the text is
 * megabytes, and JSON-escaping, writing and fsyncing it whole with every change was most of a
 * resident's one-peer change (bench/RESULTS.md, issue 19). A base file is named by its text's
 * hash and never changed: a record that names it can rely on it for as long as it is kept.
 */

/** Texts up to this many characters stay inline in the record, as they always were. */
export const INLINE_TEXT_MAX = 64 * 1024;

export const policyEdit = z.strictObject({
  at: z.number().int().min(0),
  cut: z.number().int().min(0),
  text: z.string(),
});
/** The text is the base's first `at` characters, `text`, then the base after `at + cut`. */
export type PolicyEdit = z.infer<typeof policyEdit>;

export interface PolicyBase {
  readonly hash: string;
  readonly text: string;
}

const BASE = /^\.base-([0-9a-f]{64})\.yaml$/;

export const baseFile = (files: StateFiles, hash: string) => stateFile(files, `.base-${hash}.yaml`);

/** Characters compared at a time, coarse to fine: string equality of slices, not a char loop. */
const CHUNKS = [65_536, 4096, 256, 16, 1];

/** How many characters `a` and `b` share at their start (`fromEnd`: at their end), ≤ max. */
function common(a: string, b: string, max: number, fromEnd: boolean): number {
  const part = (s: string, n: number, size: number) =>
    fromEnd ? s.slice(s.length - n - size, s.length - n) : s.slice(n, n + size);
  let n = 0;
  for (const size of CHUNKS)
    while (n + size <= max && part(a, n, size) === part(b, n, size)) n += size;
  return n;
}

/** The edit that makes `text` from `base`: what lies between their common start and end. */
export function editFrom(base: string, text: string): PolicyEdit {
  const at = common(base, text, Math.min(base.length, text.length), false);
  const end = common(base, text, Math.min(base.length, text.length) - at, true);
  return { at, cut: base.length - at - end, text: text.slice(at, text.length - end) };
}

/** The text an edit makes of its base; undefined where it does not fit the base. */
export function applyEdit(base: string, edit: PolicyEdit): string | undefined {
  if (edit.at + edit.cut > base.length) return undefined;
  return base.slice(0, edit.at) + edit.text + base.slice(edit.at + edit.cut);
}

/**
 * Whether an edit is small enough to write with each record; past this the text becomes the
 * base again (one text's write), so a record never holds more than an eighth of its text.
 */
export const worthKeeping = (edit: PolicyEdit, text: string) =>
  edit.text.length <= Math.max(INLINE_TEXT_MAX, text.length / 8);

/** The hashes of the scope's base files on disk. */
export async function basesOf(files: StateFiles): Promise<string[]> {
  const prefix = files.scope;
  const names = await readdir(files.stateDir).catch(() => [] as string[]);
  return names.flatMap((name) => {
    if (!name.startsWith(prefix)) return [];
    const hash = BASE.exec(name.slice(prefix.length))?.[1];
    return hash ? [hash] : [];
  });
}

/**
 * Removes the scope's base files but those of `keep`. Not fsynced, and a failure is passed over:
 * a base file no record names is litter, which the next base written removes.
 */
export async function removeBases(files: StateFiles, keep: readonly string[]): Promise<void> {
  for (const hash of await basesOf(files))
    if (!keep.includes(hash))
      await rm(baseFile(files, hash), { force: true }).catch(() => undefined);
}
