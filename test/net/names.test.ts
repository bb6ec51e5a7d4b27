import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { interfaceNameProblem, wireguardKeyProblem } from "../../src/net/names.js";

describe("interfaceNameProblem", () => {
  it.each([
    ["eth0"],
    ["eth0.6"],
    ["wg-home"],
    ["tun-hma"],
    ["br_lan"],
    ["a"],
    ["abcdefghijklmno"], // 15 bytes, the most the kernel takes
    ["wg-größe-vp"], // 11 characters, 13 bytes
    ["...."],
    [".eth0"],
  ])("accepts %j", (name) => {
    expect(interfaceNameProblem(name)).toBeUndefined();
  });

  it.each([
    ["", "interface name is empty"],
    [
      "abcdefghijklmnop",
      'interface name "abcdefghijklmnop" is 16 bytes; the kernel allows at most 15',
    ],
    [
      "wg-grössere-vpn",
      'interface name "wg-grössere-vpn" is 16 bytes; the kernel allows at most 15',
    ],
    ["tun-ééééééé", 'interface name "tun-ééééééé" is 18 bytes; the kernel allows at most 15'],
    ["🦊🦊🦊🦊", 'interface name "🦊🦊🦊🦊" is 16 bytes; the kernel allows at most 15'],
    [".", 'interface name "." is reserved'],
    ["..", 'interface name ".." is reserved'],
    ["eth/0", `interface name "eth/0" contains '/', ':' or white space, which the kernel rejects`],
    [
      "eth0:1",
      `interface name "eth0:1" contains '/', ':' or white space, which the kernel rejects`,
    ],
    ["eth 0", `interface name "eth 0" contains '/', ':' or white space, which the kernel rejects`],
    [
      "eth\t0",
      `interface name "eth\\t0" contains '/', ':' or white space, which the kernel rejects`,
    ],
    [
      "eth0\n",
      `interface name "eth0\\n" contains '/', ':' or white space, which the kernel rejects`,
    ],
    [" ", `interface name " " contains '/', ':' or white space, which the kernel rejects`],
  ])("refuses %j", (name, problem) => {
    expect(interfaceNameProblem(name)).toBe(problem);
  });

  it("reports length before forbidden characters", () => {
    expect(interfaceNameProblem("a/b/c/d/e/f/g/h/i")).toMatch(/is 17 bytes/);
  });

  /**
   * Any code point, lone surrogates included (what fast-check's unit "binary" draws), with ASCII
   * and the characters the rule is about drawn often. "binary" itself spends most of a second
   * building its generator, longer than the rest of this file.
   */
  const anyChar = fc.oneof(
    fc.constantFrom("/", ":", ".", " ", "\t", "\n", "\u00a0", "\u2028", "\u3000"),
    fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
    fc.integer({ min: 0x80, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
  );

  it("accepts exactly the names of 1..15 bytes without '/', ':', white space, '.' or '..'", () => {
    fc.assert(
      fc.property(fc.string({ unit: anyChar, maxLength: 20 }), (name) => {
        const size = Buffer.byteLength(name, "utf8");
        const ok = size >= 1 && size <= 15 && name !== "." && name !== ".." && !/[\s/:]/.test(name);
        expect(interfaceNameProblem(name) === undefined).toBe(ok);
      }),
    );
  });
});

describe("wireguardKeyProblem", () => {
  const real = "QwiYNlQXBHxjBEk/LGWJKlstzfZ2U4VtuI/o6GU2xHs=";
  const notAKey = (key: string) =>
    `${JSON.stringify(key)} is not a WireGuard public key (44 characters of base64, as printed by \`netpol keygen\` or \`wg pubkey\`)`;

  it.each([
    [real],
    ["WBoaT5t3SPNzmXqHnXmYrZnrweV88qFWhQFPT7sEuzk="],
    ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
    ["//////////////////////////////////////////8="],
  ])("accepts %s", (key) => {
    expect(wireguardKeyProblem(key)).toBeUndefined();
  });

  it.each([
    ["empty", ""],
    ["no padding", real.slice(0, 43)],
    ["one character short", `${real.slice(0, 42)}=`],
    ["one character long", `A${real}`],
    ["double padding", `${real.slice(0, 42)}==`],
    ["last character with bits beyond 32 bytes", `${real.slice(0, 42)}z=`],
    ["URL-safe alphabet", real.replace("/", "_")],
    ["white space", ` ${real.slice(1)}`],
    ["trailing newline", `${real}\n`],
    ["hex", "a".repeat(64)],
    ["text", "not-a-key"],
  ])("refuses %s", (_label, key) => {
    expect(wireguardKeyProblem(key)).toBe(notAKey(key));
  });

  it("accepts the base64 of any 32 bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(wireguardKeyProblem(Buffer.from(bytes).toString("base64"))).toBeUndefined();
      }),
    );
  });

  it("refuses the base64 of any other length", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }).filter((b) => b.length !== 32),
        (bytes) => {
          const key = Buffer.from(bytes).toString("base64");
          expect(wireguardKeyProblem(key)).toBe(notAKey(key));
        },
      ),
    );
  });
});
