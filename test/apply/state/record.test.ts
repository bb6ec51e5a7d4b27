import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StateFiles } from "../../../src/apply/state/files.js";
import {
  type ApplyRecord,
  readRecord,
  recordPath,
  writeRecord,
  writeRecordText,
} from "../../../src/apply/state/record.js";
import { baseFile, INLINE_TEXT_MAX } from "../../../src/apply/state/record-base.js";
import { NetpolError } from "../../../src/errors.js";
import { policyHash } from "../../../src/policy/hash.js";

const policyText = "version: 1\nsites:\n  a: {}\n";
const record = (by: string): ApplyRecord => ({
  site: "a",
  policyHash: policyHash(policyText),
  policyText,
  appliedAt: "2026-12-07T01:00:00Z",
  appliedBy: by,
  protocol: 187,
  ownership: { links: ["wg0"], addresses: [], sysctls: [], nftSkeleton: "table inet netpol {}" },
  guarded: [{ name: "lan", cidr: "10.1.0.0/24", device: "eth1", failClosed: true }],
});

describe("the record this process wrote", () => {
  let dir: string;
  let files: StateFiles;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-record-"));
    files = { stateDir: dir, scope: "netns-x", naming: {} };
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(dir, { recursive: true, force: true });
  });

  it("is read back without parsing the file again, as a fresh read of it finds it", async () => {
    await writeRecord(files, record("first"), [{ name: "wg0", ifindex: 9 } as never]);
    const text = await readFile(recordPath(files), "utf8");
    const parse = vi.spyOn(JSON, "parse");
    const held = await readRecord(files);
    expect(parse).not.toHaveBeenCalled();
    expect(held?.text).toBe(text);
    // A copy of the file, which this process never wrote, is parsed: the same record.
    const copy: StateFiles = { ...files, scope: "netns-y" };
    await writeFile(recordPath(copy), text);
    const fresh = await readRecord(copy);
    expect(parse).toHaveBeenCalled();
    expect(held?.record).toEqual(fresh?.record);
  });

  it("is read from the file again once anything else wrote it", async () => {
    await writeRecord(files, record("first"), []);
    const text = await readFile(recordPath(files), "utf8");
    // Another process's apply: another record, in place.
    await writeFile(recordPath(files), text.replace('"first"', '"other"'));
    expect((await readRecord(files))?.record.appliedBy).toBe("other");
    await writeRecord(files, record("second"), []);
    // A hand edit that breaks it is said, not hidden by what was written before.
    await writeFile(recordPath(files), text.replace(policyHash(policyText), "0".repeat(64)));
    await expect(readRecord(files)).rejects.toThrow(NetpolError);
  });
});

/** A policy text past INLINE_TEXT_MAX: a hub's members, one a line; `key` is the last one's. */
const bigText = (key: string, first = "k") => {
  const members = Array.from(
    { length: 3000 },
    (_, i) =>
      `      - { site: s${i}, address: 10.100.${i >> 8}.${i & 255}/16, publicKey: ${first}${i} }`,
  );
  return `version: 1\ntunnels:\n  hub:\n    members:\n${members.join("\n")}\n      - { last: ${key} }\n`;
};
const bigRecord = (text: string, by = "test"): ApplyRecord => ({
  ...record(by),
  policyHash: policyHash(text),
  policyText: text,
});

describe("a big policy's text in the record", () => {
  let dir: string;
  let files: StateFiles;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-record-"));
    files = { stateDir: dir, scope: "netns-x", naming: {} };
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const raw = async (f = files) => JSON.parse(await readFile(recordPath(f), "utf8"));
  const bases = async () => (await readdir(dir)).filter((n) => n.includes(".base-")).sort();
  /** The record as a process that never wrote it reads it: copied, with its base, elsewhere. */
  const fresh = async () => {
    const copy: StateFiles = { ...files, stateDir: await mkdtemp(path.join(dir, "copy-")) };
    await copyFile(recordPath(files), recordPath(copy));
    const { policyBase } = await raw();
    const base = policyBase && baseFile(files, policyBase);
    if (base && existsSync(base)) await copyFile(base, baseFile(copy, policyBase));
    return readRecord(copy);
  };

  it("is a base file beside the record, and with each change only the edit from it", async () => {
    const first = bigText("a");
    expect(first.length).toBeGreaterThan(INLINE_TEXT_MAX);
    await writeRecord(files, bigRecord(first), []);
    expect(await bases()).toEqual([`netns-x.base-${policyHash(first)}.yaml`]);
    expect(await readFile(baseFile(files, policyHash(first)), "utf8")).toBe(first);
    expect((await raw()).policyText).toBeUndefined();
    expect((await fresh())?.record).toEqual(bigRecord(first));

    const based = await stat(baseFile(files, policyHash(first)));
    const second = bigText("b");
    await writeRecord(files, bigRecord(second), []);
    // The base is not written again: the record holds the one line's edit.
    expect(await bases()).toEqual([`netns-x.base-${policyHash(first)}.yaml`]);
    expect((await stat(baseFile(files, policyHash(first)))).mtimeMs).toBe(based.mtimeMs);
    const { policyEdit, version } = await raw();
    expect(version).toBe(3);
    expect(policyEdit.text.length).toBeLessThan(10);
    expect((await stat(recordPath(files))).size).toBeLessThan(2000);
    expect((await fresh())?.record).toEqual(bigRecord(second));
    expect((await readRecord(files))?.record).toEqual(bigRecord(second));
  });

  it("makes the text the base again past an eighth of it, keeping the base a rollback needs", async () => {
    const a = bigText("a");
    await writeRecord(files, bigRecord(a), []);
    const b = bigText("b", "other");
    const beforeB = await readFile(recordPath(files), "utf8");
    await writeRecord(files, bigRecord(b), []);
    // The record replaced named a's base: a rollback of this write puts it back, so it stays.
    expect(await bases()).toEqual(
      [policyHash(a), policyHash(b)].map((h) => `netns-x.base-${h}.yaml`).sort(),
    );
    const c = bigText("c", "third");
    await writeRecord(files, bigRecord(c), []);
    expect(await bases()).toEqual(
      [policyHash(b), policyHash(c)].map((h) => `netns-x.base-${h}.yaml`).sort(),
    );
    // A rollback of b's write: the text put back reads (its base is a's, removed only now).
    await writeRecordText(files, beforeB);
    await expect(readRecord(files)).rejects.toThrow(/base file .* is missing/);
  });

  it("reads back the record a rollback puts back over a write that made a new base", async () => {
    const a = bigText("a");
    await writeRecord(files, bigRecord(a), []);
    const before = await readFile(recordPath(files), "utf8");
    await writeRecord(files, bigRecord(bigText("b", "other")), []);
    await writeRecordText(files, before);
    expect((await readRecord(files))?.record).toEqual(bigRecord(a));
    // And the next write, which finds a record it did not write, still keeps its base.
    await writeRecord(files, bigRecord(bigText("c", "third")), []);
    expect(await bases()).toContain(`netns-x.base-${policyHash(a)}.yaml`);
  });

  it("reads a record of the format before (the text inline), and writes the new one next", async () => {
    const a = bigText("a");
    await writeFile(
      recordPath(files),
      JSON.stringify({
        version: 2,
        site: "a",
        policyHash: policyHash(a),
        policyText: a,
        appliedAt: "2026-12-07T01:00:00Z",
        appliedBy: "test",
        protocol: 187,
        links: [{ name: "wg0", ifindex: 9 }],
        addresses: [],
        sysctls: [],
        nftSkeleton: "table inet netpol {}",
        guarded: ["closed 10.1.0.0/24 eth1 lan"],
      }),
    );
    expect((await readRecord(files))?.record).toEqual(bigRecord(a));
    await writeRecord(files, bigRecord(bigText("b")), []);
    expect((await raw()).version).toBe(3);
    expect((await readRecord(files))?.record).toEqual(bigRecord(bigText("b")));
  });

  it("says a missing or foreign base file, and removes the bases with the record", async () => {
    const a = bigText("a");
    await writeRecord(files, bigRecord(a), []);
    // A base left by a write killed before its record (another text): the record still reads.
    const orphan = baseFile(files, "f".repeat(64));
    await writeFile(orphan, "version: 1\n");
    expect((await fresh())?.record).toEqual(bigRecord(a));
    await writeFile(baseFile(files, policyHash(a)), a.replace("k7", "k8"));
    await expect(fresh()).rejects.toThrow(/does not match its hash/);
    await rm(baseFile(files, policyHash(a)));
    await expect(fresh()).rejects.toThrow(/base file .* is missing/);
    await writeRecordText(files, undefined);
    expect((await readdir(dir)).filter((n) => !n.startsWith("copy-"))).toEqual([]);
  });
});
