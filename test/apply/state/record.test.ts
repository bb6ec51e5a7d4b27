import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StateFiles } from "../../../src/apply/state/files.js";
import {
  type ApplyRecord,
  readRecord,
  recordPath,
  writeRecord,
} from "../../../src/apply/state/record.js";
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
