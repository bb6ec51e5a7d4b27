import { mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeState as writeStateOn } from "../../../src/apply/state/files.js";
import { NetpolError } from "../../../src/errors.js";

/**
 * A filesystem that fills up: each write(2) takes at most `chunk` bytes, and once `room` bytes
 * are taken the next one fails with ENOSPC, as the kernel does (a short write first, then the
 * errno). `refuse` makes open(2) fail with that errno instead.
 */
const disk = {
  chunk: Number.POSITIVE_INFINITY,
  room: Number.POSITIVE_INFINITY,
  refuse: undefined as string | undefined,
};
const errno = (code: string) => Object.assign(new Error(`${code}: fake`), { code });
const openOnDisk: typeof open = async (file, flags, mode) => {
  if (disk.refuse) throw errno(disk.refuse);
  const handle = await open(file, flags, mode);
  let taken = 0;
  const real = handle.write.bind(handle);
  const write = async (buffer: Buffer, offset: number, length: number, position: number) => {
    const fits = Math.min(length, disk.chunk, disk.room - taken);
    if (fits <= 0) throw errno("ENOSPC");
    taken += fits;
    return real(buffer, offset, fits, position);
  };
  return Object.assign(handle, { write });
};
const writeState = (file: string, text: string) => writeStateOn(file, text, true, openOnDisk);

describe("writeState on a filesystem that fills up", () => {
  let dir: string;
  let file: string;
  const text = `${JSON.stringify({ policyText: "x".repeat(10_000) }, null, 2)}\n`;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "netpol-files-"));
    file = path.join(dir, "netns-a.json");
    await writeFile(file, "the record before\n");
    Object.assign(disk, {
      chunk: Number.POSITIVE_INFINITY,
      room: Number.POSITIVE_INFINITY,
      refuse: undefined,
    });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("goes on after short writes until the whole text is on disk", async () => {
    disk.chunk = 4096;
    await writeState(file, text);
    expect(await readFile(file, "utf8")).toBe(text);
    expect(await readdir(dir)).toEqual(["netns-a.json"]);
  });

  it("a write cut short by ENOSPC is a user error naming the file and the errno; the file before stays whole", async () => {
    disk.chunk = 4096;
    disk.room = 8192;
    const err = await writeState(file, text).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NetpolError);
    expect((err as NetpolError).code).toBe("NETPOL_E_STATE_WRITE");
    expect((err as NetpolError).exitCode).toBe(1);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain("ENOSPC");
    expect(await readFile(file, "utf8")).toBe("the record before\n");
    expect(await readdir(dir)).toEqual(["netns-a.json"]);
  });

  it("a read-only filesystem is said as EROFS", async () => {
    disk.refuse = "EROFS";
    const err = await writeState(file, text).catch((e: unknown) => e);
    expect((err as NetpolError).code).toBe("NETPOL_E_STATE_WRITE");
    expect((err as Error).message).toMatch(/read-only.*EROFS/);
    expect(await readFile(file, "utf8")).toBe("the record before\n");
  });
});

describe("writeState's directory", () => {
  it("is made again when it was removed after a first write (it is made once per process)", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "netpol-files-"));
    try {
      const file = path.join(root, "state", "netns-a.json");
      await writeStateOn(file, "first\n");
      await rm(path.dirname(file), { recursive: true });
      await writeStateOn(file, "second\n");
      expect(await readFile(file, "utf8")).toBe("second\n");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
