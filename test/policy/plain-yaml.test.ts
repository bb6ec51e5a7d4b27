import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { constructFromEvents, parseEvents } from "js-yaml";
import { describe, expect, it } from "vitest";
import { makeShape } from "../../bench/shapes.js";
import { readPlainYaml } from "../../src/policy/plain-yaml.js";
import { generateKeyPair } from "../../src/system/keys.js";
import { egressPolicy, hubPolicy, networksPolicy } from "../support/large-policy.js";

/** What js-yaml's path in read-yaml.ts reads, with the types JSON would lose spelled out. */
function reference(text: string): { ok: true; data: string } | { ok: false } {
  try {
    const docs = constructFromEvents(parseEvents(text, { maxDepth: 64 }), {
      source: text,
      maxAliases: 0,
    });
    return docs.length === 1 ? { ok: true, data: canonical(docs[0]) } : { ok: false };
  } catch {
    return { ok: false };
  }
}

/** Key order, numbers (NaN, ±Infinity, -0) and null against undefined all count. */
function canonical(data: unknown): string {
  return JSON.stringify(data, (_k, v) =>
    typeof v === "number" ? `number:${Object.is(v, -0) ? "-0" : String(v)}` : v,
  );
}

/** The plain reader either gives up or reads exactly what js-yaml reads. */
function agrees(text: string): boolean {
  const plain = readPlainYaml(text);
  if (plain === undefined) return true;
  const ref = reference(text);
  return ref.ok && ref.data === canonical(plain.data);
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

const root = path.join(import.meta.dirname, "../..");

describe("readPlainYaml", () => {
  it("reads the shipped policies and the hostile corpus as js-yaml does, or gives up", () => {
    const files = [
      ...yamlFiles(path.join(root, "policies")),
      ...yamlFiles(path.join(root, "test")),
    ];
    expect(files.length).toBeGreaterThan(50);
    for (const file of files) expect(agrees(readFileSync(file, "utf8")), file).toBe(true);
    // Comments with arrows and inline comments after values stay in the subset.
    const shipped = readFileSync(path.join(root, "policies/a-vlan-via-vpn.yaml"), "utf8");
    expect(readPlainYaml(shipped)).toBeDefined();
  });

  it("takes the large generated policies (the benchmarks' shapes) without giving up", () => {
    const hubKey = generateKeyPair();
    const texts = [
      egressPolicy(200),
      hubPolicy(200),
      networksPolicy(200),
      makeShape("mixed", 200, "v", hubKey).policy,
    ];
    for (const text of texts) {
      const plain = readPlainYaml(text);
      expect(plain).toBeDefined();
      expect(canonical(plain?.data)).toBe((reference(text) as { data: string }).data);
    }
  });

  it("resolves scalars and keys as js-yaml's core schema does", () => {
    const text = [
      "a: true",
      "b: ~",
      "c: 0x1F",
      "d: 1e3",
      "e: .inf",
      "f: -1",
      "g: 10.0.0.0/24",
      "h: a#b",
      "i: x # a comment",
      "0x10: hex key",
      "null: null key",
      "j: 'it''s'",
      'k: "q # not a comment"',
      "l: { m: [1, 2.5, no], n: {} }",
      "o:",
      "- p: 1",
      "  q: []",
      "- ",
      "r:",
    ].join("\n");
    expect(readPlainYaml(text)?.data).toEqual({
      a: true,
      b: null,
      c: 31,
      d: 1000,
      e: Number.POSITIVE_INFINITY,
      f: -1,
      g: "10.0.0.0/24",
      h: "a#b",
      i: "x",
      "16": "hex key",
      null: "null key",
      j: "it's",
      k: "q # not a comment",
      l: { m: [1, 2.5, "no"], n: {} },
      o: [{ p: 1, q: [] }, null],
      r: null,
    });
  });

  it("agrees with js-yaml on the corners of the subset", () => {
    for (const text of [
      '"a":b',
      "'a''b': 1",
      '"a" : b',
      "a : b",
      "-a: 1",
      "a: b # c: d",
      "a: b:c",
      "a: x:",
      "a: 1:2:3",
      "a: [a:b]",
      "a: [2001:db8::/32]",
      "a: {'b': 'c'}",
      "a:\n- 1\n- 2",
      "-   a: 1\n    b: 2",
      "a:\n  - b\n  -",
      "a:\n  - b: 1\n    c: 2\n  - d",
      "a: 1\n b: 2",
      "a: 1\n...\n",
      "a: 017\na2: 0o17\na3: 0b101\na4: .nan\na5: -.inf\na6: True\na7: yes\na8: 1_000",
    ]) {
      expect(agrees(text), text).toBe(true);
    }
  });

  it("gives up on what it does not read", () => {
    for (const text of [
      "a: &x 1\nb: *x",
      "a: !!str 1",
      "a: |\n  text",
      'a: "esc\\n"',
      "a: b\na: c",
      "a: [1,\n  2]",
      "a: b\n  c",
      "---\na: 1",
      "a:\tb",
      "__proto__: 1",
      "? a\n: b",
      "a: [b: c]",
      "a: [b, ]",
      "- - a",
      "a: [-]",
      "a: {-}",
    ]) {
      expect(readPlainYaml(text), text).toBeUndefined();
    }
  });

  it("never reads a random policy-like text differently from js-yaml", () => {
    const scalar = fc.constantFrom(
      "a",
      "b c",
      "true",
      "False",
      "NULL",
      "~",
      "0",
      "-1",
      "+1",
      "007",
      "0x1F",
      "0o17",
      "1_000",
      "1.5",
      "1e3",
      ".inf",
      "-.Inf",
      ".nan",
      "10.0.0.0/24",
      "203.0.113.1:51820",
      "http://x/y",
      "a#b",
      "a:b",
      "-x",
      "2001:db8::1/64",
      "yes",
      "<<",
      "é→",
      "'q'",
      "'it''s'",
      '"d"',
      '"a: b"',
    );
    const key = fc.constantFrom("name", "kind", "a b", "1", "true", "~", "x-y", "<<", "a:b", "k");
    type Node = string | { seq: Node[] } | { map: [string, Node][] };
    const { node } = fc.letrec<{ node: Node }>((tie) => ({
      node: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        scalar,
        fc.record({ seq: fc.array(tie("node"), { maxLength: 3 }) }),
        fc.record({ map: fc.array(fc.tuple(key, tie("node")), { maxLength: 3 }) }),
      ),
    }));
    const flow = (n: Node): string =>
      typeof n === "string"
        ? n
        : "seq" in n
          ? `[${n.seq.map(flow).join(", ")}]`
          : `{ ${n.map.map(([k, v]) => `${k}: ${flow(v)}`).join(", ")} }`;
    /** Block style, with flow for some collections (`style` picks per node). */
    const block = (n: Node, indent: string, style: number[]): string[] => {
      const pick = style.shift() ?? 0;
      if (typeof n === "string" || pick % 4 === 0) return [`${indent}${flow(n)}`];
      if ("seq" in n) {
        if (n.seq.length === 0) return [`${indent}[]`];
        return n.seq.flatMap((item) => {
          const inner = block(item, `${indent}  `, style);
          const first = inner[0]?.trimStart() ?? "";
          return [`${indent}- ${first}`, ...inner.slice(1)];
        });
      }
      if (n.map.length === 0) return [`${indent}{}`];
      return n.map.flatMap(([k, v]) => {
        if (typeof v === "string" || pick % 3 === 0) return [`${indent}${k}: ${flow(v)}`];
        const compact = pick % 5 === 1 && "seq" in v ? indent : `${indent}  `;
        return [`${indent}${k}:`, ...block(v, compact, style)];
      });
    };
    const doc = fc.record({
      top: fc.array(fc.tuple(key, node), { minLength: 1, maxLength: 4 }),
      style: fc.array(fc.nat(59), { maxLength: 30 }),
      edits: fc.array(
        fc.tuple(
          fc.nat(),
          fc.constantFrom(" ", ":", "-", "#", " #", "\n", "'", '"', "[", "]", "{", "}", ",", "&"),
        ),
        { maxLength: 3 },
      ),
    });
    fc.assert(
      fc.property(doc, ({ top, style, edits }) => {
        let text = block({ map: top }, "", [1, ...style]).join("\n");
        if (!agrees(text)) return false;
        for (const [at, insert] of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i);
        }
        return agrees(text);
      }),
      { numRuns: 3000 },
    );
  });
});
