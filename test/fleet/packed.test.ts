import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { desiredSchema, readValue } from "../../src/fleet/documents.js";
import { pack, unpack } from "../../src/fleet/packed.js";
import { networksPolicy } from "../support/large-policy.js";

describe("values packed for etcd", () => {
  it("packs a large policy to a fraction of etcd's 1.5 MiB request limit, and back", () => {
    const text = networksPolicy(30_000);
    expect(Buffer.byteLength(text)).toBeGreaterThan(2 * 1024 * 1024);
    const packed = pack(text);
    expect(packed.length).toBeLessThan(512 * 1024);
    expect(unpack(packed)).toBe(text);
  });

  it("leaves a small value plain, as etcdctl shows it", () => {
    expect(pack('{"serial":1}')).toBe('{"serial":1}');
    expect(unpack('{"serial":1}')).toBe('{"serial":1}');
  });

  it("reads a packed document through its schema; a damaged one is not read", () => {
    const desired = {
      serial: 2,
      wave: 0,
      after: [],
      failureBudget: 0,
      healthSeconds: 0,
      text: "x".repeat(100_000),
      hash: "h",
    };
    const packed = pack(JSON.stringify(desired));
    expect(packed).toMatch(/^netpol-gzip-base64:/);
    expect(readValue(desiredSchema, packed)).toEqual(desired);
    expect(readValue(desiredSchema, `${packed.slice(0, 200)}AAAA`)).toBeUndefined();
  });

  it("refuses a value that would unpack past 64 MiB", () => {
    const bomb = `netpol-gzip-base64:${gzipSync(Buffer.alloc(65 * 1024 * 1024)).toString("base64")}`;
    expect(bomb.length).toBeLessThan(1024 * 1024);
    expect(() => unpack(bomb)).toThrow();
  });
});
