import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeShape, SHAPES } from "../../../bench/shapes.js";
import { compileSite } from "../../../src/compile/compile.js";
import { NetpolError } from "../../../src/errors.js";
import { IncrementalPolicy } from "../../../src/policy/incremental/policy.js";
import { type LoadedPolicy, parsePolicy } from "../../../src/policy/load.js";

const key = () => randomBytes(32).toString("base64");
const hubKey = { privateKey: key(), publicKey: key() };

/** What reading a text gives: the loaded policy, or the error's code, message and places. */
function outcome(read: () => unknown): unknown {
  try {
    return { ok: read() };
  } catch (err) {
    if (!(err instanceof NetpolError)) throw err;
    return { code: err.code, message: err.message, diagnostics: err.diagnostics };
  }
}

const EXAMPLES = ["a-vlan-via-vpn", "b-publish-via-vps", "c-combined"].map((name) =>
  readFileSync(new URL(`../../../policies/${name}.yaml`, import.meta.url), "utf8"),
);

/** Base texts: every bench shape at a few sizes, and the example policies. */
const bases = [
  ...SHAPES.flatMap((shape) =>
    [1, 3, 12].flatMap((n) => {
      const s = makeShape(shape, n, "t", hubKey);
      return [s.policy, s.changed];
    }),
  ),
  ...EXAMPLES,
];

/** Values an edit puts in place of one on a line: valid ones, clashing ones, broken ones. */
const VALUES = [
  "n0",
  "n1",
  "n2",
  "s0",
  "s1",
  "r",
  "lan",
  "lan0",
  "ext0",
  "eth0",
  "wgtun",
  "files",
  "out",
  "10.0.0.0/24",
  "10.0.1.0/24",
  "10.250.0.0/24",
  "10.100.0.1/16",
  "10.100.255.254/16",
  "192.168.6.0/24",
  "100.64.0.0/25",
  "0.0.0.0/0",
  "1",
  "51820",
  "10000",
  "true",
  "hub",
  "mesh",
  "tcp",
  "physical",
  "[lan]",
  "[n0, n1]",
  "{}",
  "[]",
  '"quoted"',
  "'single'",
  "x y",
  "&a",
  "*a",
  "!tag",
  "|",
  "'",
  "[",
  "}",
  "# note",
  "__proto__",
  "a\\b",
  key(),
  key(),
  "",
];

type Edit =
  | { kind: "value"; line: number; which: number; value: string }
  | { kind: "fresh"; line: number; which: number; seed: number }
  | { kind: "copy" | "drop" | "indent" | "outdent"; line: number }
  | { kind: "insert"; line: number; text: string };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({
    kind: fc.constant("value" as const),
    line: fc.nat(),
    which: fc.nat(),
    value: fc.constantFrom(...VALUES),
  }),
  fc.record({ kind: fc.constantFrom("copy", "drop", "indent", "outdent"), line: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    line: fc.nat(),
    text: fc.constantFrom(
      "",
      "# a comment",
      "    # indented comment",
      "      - n9",
      "  s9: {}",
      "x: 1",
    ),
  }),
);

/** Values on a line: after `key: `, `- `, or inside a flow collection. */
const VALUE = /(?<=: |- |\[|, )[^\s,[\]{}:]+(?=[\s,\]}]|$)/g;

function applyEdit(text: string, e: Edit): string {
  const lines = text.split("\n");
  const i = e.line % lines.length;
  const line = lines[i] ?? "";
  switch (e.kind) {
    case "value": {
      const spots = [...line.matchAll(VALUE)];
      const spot = spots[e.which % Math.max(1, spots.length)];
      if (!spot) return text;
      const at = spot.index ?? 0;
      lines[i] = line.slice(0, at) + e.value + line.slice(at + spot[0].length);
      break;
    }
    case "fresh": {
      // The same kind of value, most likely unused: a key, a prefix, a port.
      const spots = [...line.matchAll(VALUE)];
      const spot = spots[e.which % Math.max(1, spots.length)];
      if (!spot) return text;
      const at = spot.index ?? 0;
      const a = e.seed % 250;
      const b = (e.seed >> 8) % 250;
      const value = spot[0]
        .replace(/^[A-Za-z0-9+/]{43}=$/, () => Buffer.alloc(32, e.seed).toString("base64"))
        .replace(/^10\.\d+\.\d+\.0\/24$/, `10.${a}.${b}.0/24`)
        .replace(/^100\.\d+\.\d+\.0\/25$/, `100.${64 + (a % 64)}.${b}.0/25`)
        .replace(/^\d{4,5}$/, `${20000 + (e.seed % 10000)}`);
      lines[i] = line.slice(0, at) + value + line.slice(at + spot[0].length);
      break;
    }
    case "copy":
      lines.splice(i, 0, line);
      break;
    case "drop":
      lines.splice(i, 1);
      break;
    case "indent":
      lines[i] = `  ${line}`;
      break;
    case "outdent":
      lines[i] = line.replace(/^ {2}/, "");
      break;
    case "insert":
      lines.splice(i, 0, e.text);
      break;
  }
  return lines.join("\n");
}

/**
 * Reads `base`, then each text the steps make of it, both ways (adding the reads through the
 * entries to `counts`); gives how many edited texts were valid.
 */
function compare(
  counts: { entries: number },
  base: string,
  steps: readonly (readonly Edit[])[],
  siteIndex = 0,
) {
  const reader = new IncrementalPolicy();
  let text = base;
  let valid = 0;
  let site: string | undefined;
  const both = () => {
    const full = outcome(() => parsePolicy(text, "p.yaml"));
    expect(outcome(() => reader.load(text, "p.yaml"))).toEqual(full);
    if (!("ok" in (full as object))) return false;
    // The state compiled for one site of the run, where the reader gives one.
    const { intent } = (full as { ok: LoadedPolicy }).ok;
    site ??= intent.sites[siteIndex % intent.sites.length]?.name ?? "";
    const compiled = intent.sites.some((s) => s.name === site) ? reader.compiled(site) : undefined;
    if (compiled) expect(compiled).toEqual(compileSite(intent, site));
    return true;
  };
  both();
  for (const step of steps) {
    text = step.reduce(applyEdit, text);
    if (both()) valid++;
  }
  counts.entries += reader.counts.entries;
  return valid;
}

/** An edit of a sequence entry's line, with a value the schema takes (clashes allowed). */
const entryEdit = (lines: readonly number[]): fc.Arbitrary<Edit> =>
  fc.oneof(
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant("value" as const),
        line: fc.constantFrom(...lines),
        which: fc.nat(),
        value: fc.constantFrom(...PLAUSIBLE),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constantFrom("copy", "drop"),
        line: fc.constantFrom(...lines),
      }),
    },
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant("fresh" as const),
        line: fc.constantFrom(...lines),
        which: fc.nat(),
        seed: fc.nat(),
      }),
    },
  );

const PLAUSIBLE = [
  "n0",
  "n1",
  "s0",
  "s1",
  "lan",
  "lan0",
  "ext0",
  "10.0.0.0/24",
  "10.0.1.0/24",
  "10.250.0.0/24",
  "10.100.0.1/16",
  "10.100.9.9/16",
  "192.168.6.0/24",
  "100.64.0.0/25",
  "100.64.9.0/25",
  "10001",
  "30000",
  "tcp",
  "udp",
  "true",
  "false",
  key(),
  key(),
];

describe("IncrementalPolicy", () => {
  it("reads every text exactly as parsePolicy does, through a run of edits", () => {
    const counts = { entries: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom(...bases),
        fc.array(fc.array(edit, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
        (base, steps) => {
          compare(counts, base, steps);
        },
      ),
      { numRuns: 150 },
    );
    expect(counts.entries).toBeGreaterThan(10);
  });

  it("reads edits of entries through the entries alone, exactly as parsePolicy does, and compiles them as compileSite does", () => {
    const counts = { entries: 0 };
    let valid = 0;
    for (const base of bases) {
      const lines = base.split("\n").flatMap((l, i) => (/^ *- /.test(l) ? [i] : []));
      if (lines.length === 0) continue;
      fc.assert(
        fc.property(
          fc.array(fc.array(entryEdit(lines), { minLength: 1, maxLength: 2 }), {
            minLength: 1,
            maxLength: 4,
          }),
          fc.nat(),
          (steps, site) => {
            valid += compare(counts, base, steps, site);
          },
        ),
        { numRuns: 20 },
      );
    }
    // Most valid edited texts were read through their entries.
    expect(counts.entries).toBeGreaterThan(valid / 2);
  });
});

describe("IncrementalPolicy's fallbacks", () => {
  const base = makeShape("egress-per-network", 4, "t", hubKey).policy;
  /** Reads `base` then `next`: the same outcome as parsePolicy's, and which way it was read. */
  const second = (first: string, next: string) => {
    const reader = new IncrementalPolicy();
    reader.load(first, "p.yaml");
    const got = outcome(() => reader.load(next, "p.yaml"));
    expect(got).toEqual(outcome(() => parsePolicy(next, "p.yaml")));
    return reader.counts.full === 1 ? "entries" : "full";
  };
  const edited = (text: string, from: string, to: string) => {
    expect(text).toContain(from);
    return text.replace(from, to);
  };

  it("reads a changed entry alone, and a comment-only change without reading", () => {
    expect(second(base, edited(base, "cidr: 10.0.3.0/24", "cidr: 10.9.3.0/24"))).toBe("entries");
    expect(second(base, edited(base, "    egress:\n", "    # out\n    egress:\n"))).toBe("entries");
    const added = edited(
      base,
      "    egress:\n",
      "      - { name: n9, cidr: 10.9.9.0/24, interface: lan0 }\n    egress:\n",
    );
    expect(second(base, added)).toBe("entries");
  });

  it("reads in full what an entry alone cannot say", () => {
    const anchored = edited(
      edited(
        base,
        "interface: lan0 }\n      - { name: n1",
        "interface: &i lan0 }\n      - { name: n1",
      ),
      "cidr: 10.0.3.0/24, interface: lan0",
      "cidr: 10.0.3.0/24, interface: *i",
    );
    const pairs: [string, string][] = [
      // An alias elsewhere may name an anchor in the entry.
      [anchored, edited(anchored, "&i lan0", "&i lan1")],
      // Settings, a top-level key, a flow collection on two lines, a second document.
      [base, edited(base, "version: 1\n", "version: 1\nsettings: { routeProtocol: 78 }\n")],
      [
        base,
        edited(base, "    external: [{ name: ext0 }]\n", "    external:\n      - name: ext0\n"),
      ],
      [base, `${base}---\nversion: 1\n`],
      [base, edited(base, "{ name: n1, cidr", "{ name: n1,\n        cidr")],
    ];
    for (const [first, next] of pairs) expect(second(first, next)).toBe("full");
  });

  it("changes one member's key alone, and reads a key another member holds in full", () => {
    const hub = makeShape("wireguard-hub", 3, "t", hubKey).policy;
    const keys = [...hub.matchAll(/site: s(\d), address: [^,]+, publicKey: ([^,]+),/g)];
    const [k0, k2] = [keys[0]?.[2] ?? "", keys[2]?.[2] ?? ""];
    expect(second(hub, edited(hub, k2, key()))).toBe("entries");
    expect(second(hub, edited(hub, "s.key }\n", "s2.key }\n"))).toBe("entries");
    expect(second(hub, edited(hub, k2, k0))).toBe("full");
    expect(second(hub, edited(hub, k2, hubKey.publicKey))).toBe("full");
  });

  it("places the problems of an invalid entry as parsePolicy does", () => {
    const dup = edited(base, "name: n2,", "name: n1,");
    expect(second(base, dup)).toBe("full");
    const bad = edited(base, "cidr: 10.0.2.0/24", "cidr: 10.0.2.1/24");
    expect(outcome(() => new IncrementalPolicy().load(bad, "p.yaml"))).toMatchObject({
      code: "NETPOL_E_POLICY_INVALID",
    });
  });
});

describe("one network's prefix changed alone", () => {
  const base = makeShape("egress-per-network", 4, "t", hubKey).policy;
  const read = (first: string, next: string) => {
    const reader = new IncrementalPolicy();
    const before = reader.load(first, "p.yaml");
    const after = reader.load(next, "p.yaml");
    expect(after).toEqual(parsePolicy(next, "p.yaml"));
    return { before: before.intent.sites[0], after: after.intent.sites[0] };
  };

  it("swaps the prefix in the network and its egress's sources, and resolves nothing else again", () => {
    const { before, after } = read(base, base.replace("cidr: 10.0.3.0/24", "cidr: 10.9.3.0/24"));
    // Every other egress and network is the object read before: nothing was resolved again.
    expect(after?.egress.slice(0, 3)).toEqual(before?.egress.slice(0, 3));
    for (const [i, e] of (after?.egress.slice(0, 3) ?? []).entries())
      expect(e).toBe(before?.egress[i]);
    expect(after?.networks[0]).toBe(before?.networks[0]);
    expect(after?.egress[3]?.sources[0]).toBe(after?.networks[3]?.cidr);
  });

  it("resolves again where the prefix clashes, or the network has an address", () => {
    // An overlap with another network: parsePolicy's error, with its place.
    const clash = base.replace("cidr: 10.0.3.0/24", "cidr: 10.0.0.0/16");
    const reader = new IncrementalPolicy();
    reader.load(base, "p.yaml");
    expect(outcome(() => reader.load(clash, "p.yaml"))).toEqual(
      outcome(() => parsePolicy(clash, "p.yaml")),
    );
    const addressed = base.replace(
      "cidr: 10.0.3.0/24, interface: lan0",
      "cidr: 10.0.3.0/24, interface: lan0, address: 10.0.3.1",
    );
    const { before, after } = read(
      addressed,
      addressed.replace(
        "10.0.3.0/24, interface: lan0, address: 10.0.3.1",
        "10.0.4.0/24, interface: lan0, address: 10.0.4.1",
      ),
    );
    expect(after?.egress[0]).not.toBe(before?.egress[0]);
  });
});
