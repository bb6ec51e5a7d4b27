import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { makeShape } from "../../../bench/shapes.js";
import { compileSite } from "../../../src/compile/compile.js";
import { IncrementalPolicy } from "../../../src/policy/incremental/policy.js";
import type { Intent } from "../../../src/policy/intent.js";
import { parsePolicy } from "../../../src/policy/load.js";

const key = () => randomBytes(32).toString("base64");
const hubKey = { privateKey: key(), publicKey: key() };

/** The spokes' keys of a hub text, in order. */
const spokeKeys = (text: string) =>
  [...text.matchAll(/site: s\d+, address: [^,]+, publicKey: ([^,]+),/g)].map((m) => m[1] ?? "");

describe("withMemberKey through IncrementalPolicy", () => {
  it("gives parsePolicy's intent and compileSite's state over a long run of key changes, and leaves each earlier intent as it was", () => {
    const reader = new IncrementalPolicy();
    let text = makeShape("wireguard-hub", 6, "t", hubKey).policy;
    reader.load(text, "h.yaml");
    const freed: string[] = [];
    const read: { text: string; intent: Intent }[] = [];
    let invalid = 0;
    // Past the bound of members changed before the sites are made (64), and round again.
    for (let k = 0; k < 200; k++) {
      const keys = spokeKeys(text);
      const at = (k * 7) % keys.length;
      const from = keys[at] ?? "";
      // A fresh key; a key another spoke held before (free again); a key a spoke holds now.
      const to =
        k % 5 === 3 && freed.length > 0
          ? (freed.shift() ?? "")
          : k % 11 === 10
            ? (keys[(at + 1) % keys.length] ?? "")
            : key();
      const next = text.replace(from, to);
      const full = (() => {
        try {
          return parsePolicy(next, "h.yaml");
        } catch {
          return undefined;
        }
      })();
      if (!full) {
        invalid++;
        expect(() => reader.load(next, "h.yaml")).toThrow();
        continue;
      }
      const loaded = reader.load(next, "h.yaml");
      expect(reader.compiled("r")).toEqual(compileSite(full.intent, "r"));
      read.push({ text: next, intent: loaded.intent });
      freed.push(from);
      text = next;
    }
    expect(invalid).toBeGreaterThan(5);
    // Each intent read after all the changes that followed it: that text's, untouched.
    for (const { text: t, intent } of read) expect(intent).toEqual(parsePolicy(t, "h.yaml").intent);
    // Only the first text was read in full (and the invalid ones).
    expect(reader.counts.full).toBe(1 + invalid);
  });
});
