import fc from "fast-check";
import { Netmask } from "netmask";
import { describe, expect, it } from "vitest";
import {
  bits,
  type Cidr,
  compareCidr,
  contains,
  type Family,
  formatAddress,
  formatCidr,
  hasHostBits,
  hostPrefix,
  nestedPairs,
  networkOf,
  overlaps,
  parseAddress,
  parseCidr,
  prefixLookup,
} from "../../src/net/cidr.js";

const MAX: Record<Family, bigint> = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n };

/** A CIDR of the family, host bits set or not. */
const cidrOf = (family: Family) =>
  fc.record({
    family: fc.constant(family),
    address: fc.bigInt({ min: 0n, max: MAX[family] }),
    prefix: fc.integer({ min: 0, max: bits(family) }),
  }) as fc.Arbitrary<Cidr>;

const anyCidr = fc.oneof(cidrOf(4), cidrOf(6));
const network = anyCidr.map(networkOf);

/**
 * CIDRs of one family with a bias towards nesting, so containment and overlap are often true:
 * all share a random base address and differ in prefix and in a few low bits.
 */
const relatedCidrs = (n: number) =>
  fc
    .record({
      family: fc.constantFrom<Family>(4, 6),
      base: fc.bigInt({ min: 0n, max: MAX[6] }),
      parts: fc.array(
        fc.record({
          prefixFraction: fc.double({ min: 0, max: 1, noNaN: true }),
          noise: fc.nat(255),
        }),
        { minLength: n, maxLength: n },
      ),
    })
    .map(({ family, base, parts }) =>
      parts.map(({ prefixFraction, noise }): Cidr => {
        const width = bits(family);
        const prefix = Math.min(width, Math.floor(prefixFraction * (width + 1)));
        const address = ((base & MAX[family]) ^ BigInt(noise)) & MAX[family];
        return { family, address, prefix };
      }),
    );

/** First and last address of a CIDR, computed without the module under test. */
function range(c: Cidr): [bigint, bigint] {
  const hostBits = BigInt(bits(c.family) - c.prefix);
  const size = 1n << hostBits;
  const first = (c.address >> hostBits) << hostBits;
  return [first, first + size - 1n];
}

const inside = (addr: bigint, c: Cidr) => {
  const [first, last] = range(c);
  return addr >= first && addr <= last;
};

/** An address in the CIDR picked by a random seed. */
function addressIn(c: Cidr, seed: bigint): bigint {
  const [first, last] = range(c);
  return first + (seed % (last - first + 1n));
}

const seeds = fc.array(fc.bigInt({ min: 0n, max: MAX[6] }), { minLength: 1, maxLength: 16 });

const parsed = (text: string): Cidr => {
  const r = parseCidr(text);
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

describe("parse and format", () => {
  it("round-trips every IPv4 and IPv6 CIDR through text", () => {
    fc.assert(
      fc.property(anyCidr, (c) => {
        expect(parseCidr(formatCidr(c))).toEqual({ ok: true, value: c });
      }),
    );
  });

  it("round-trips dotted-quad text exactly", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 32 }),
        (octets, prefix) => {
          const text = `${octets.join(".")}/${prefix}`;
          expect(formatCidr(parsed(text))).toBe(text);
        },
      ),
    );
  });

  it("formats IPv6 in its canonical form, which parses back unchanged", () => {
    fc.assert(
      fc.property(cidrOf(6), (c) => {
        const text = formatCidr(c);
        expect(text).toBe(text.toLowerCase());
        expect(text).not.toMatch(/(^|:)0[0-9a-f]/);
        expect(formatCidr(parsed(text))).toBe(text);
      }),
    );
  });

  it("reads a bare address as a host prefix", () => {
    fc.assert(
      fc.property(anyCidr, (c) => {
        const text = formatAddress(c);
        expect(parseCidr(text)).toEqual({ ok: true, value: hostPrefix(c) });
        expect(parseAddress(text)).toEqual({
          ok: true,
          value: { family: c.family, address: c.address },
        });
      }),
    );
  });

  it("refuses every prefix longer than the family allows", () => {
    fc.assert(
      fc.property(anyCidr, fc.integer({ min: 1, max: 99 }), (c, extra) => {
        const text = `${formatAddress(c)}/${bits(c.family) + extra}`;
        expect(parseCidr(text).ok).toBe(false);
      }),
    );
  });

  it.each([
    ["192.168.6.0/24", 4, 0xc0a80600n, 24],
    ["10.0.0.1", 4, 0x0a000001n, 32],
    ["0.0.0.0/0", 4, 0n, 0],
    ["255.255.255.255/32", 4, 0xffffffffn, 32],
    ["2001:db8::/32", 6, 0x20010db8n << 96n, 32],
    ["::/0", 6, 0n, 0],
    ["2001:db8::1", 6, (0x20010db8n << 96n) | 1n, 128],
    ["::ffff:192.0.2.1/128", 6, (0xffffn << 32n) | 0xc0000201n, 128],
  ] as const)("parses %s", (text, family, address, prefix) => {
    expect(parseCidr(text)).toEqual({ ok: true, value: { family, address, prefix } });
  });

  it.each([
    ["10.0.0.0/33", '"10.0.0.0/33" has a prefix length outside 0..32'],
    ["2001:db8::/129", '"2001:db8::/129" has a prefix length outside 0..128'],
    ["10.0.0.0/-1", '"10.0.0.0/-1" has a prefix length outside 0..32'],
    ["10.0.0.0/", '"10.0.0.0/" has a prefix length outside 0..32'],
    ["10.0.0.0/2a", '"10.0.0.0/2a" has a prefix length outside 0..32'],
    ["10.0.0.0/1000", '"10.0.0.0/1000" has a prefix length outside 0..32'],
    ["1.2.3", '"1.2.3" is not a CIDR'],
    ["1.2.3/24", '"1.2.3/24" is not a CIDR'],
    ["010.0.0.1/32", '"010.0.0.1/32" is not a CIDR'],
    ["0x0a.0.0.1", '"0x0a.0.0.1" is not a CIDR'],
    ["10.0.0.256/32", '"10.0.0.256/32" is not a CIDR'],
    ["10.0.0.0/8/8", '"10.0.0.0/8/8" is not a CIDR'],
    ["fe80::1%eth0/64", '"fe80::1%eth0/64" is not a CIDR'],
    ["", '"" is not a CIDR'],
    ["home", '"home" is not a CIDR'],
  ])("refuses %j", (text, error) => {
    expect(parseCidr(text)).toEqual({ ok: false, error });
  });

  it.each([
    ["1.2.3", '"1.2.3" is not a dotted-quad IPv4 address'],
    ["10.0.0.1/32", '"10.0.0.1/32" is not an IP address'],
    ["fe80::1%eth0", '"fe80::1%eth0" has a zone id; drop the %zone'],
    ["example.org", '"example.org" is not an IP address'],
  ])("refuses the address %j", (text, error) => {
    expect(parseAddress(text)).toEqual({ ok: false, error });
  });
});

describe("networkOf and hasHostBits", () => {
  it("networkOf is idempotent and leaves no host bits", () => {
    fc.assert(
      fc.property(anyCidr, (c) => {
        const net = networkOf(c);
        expect(networkOf(net)).toEqual(net);
        expect(hasHostBits(net)).toBe(false);
        expect(net.prefix).toBe(c.prefix);
        expect(net.family).toBe(c.family);
        expect(net.address).toBe(range(c)[0]);
      }),
    );
  });

  it("hasHostBits is true exactly when the address is not the network's first", () => {
    fc.assert(
      fc.property(anyCidr, (c) => {
        expect(hasHostBits(c)).toBe(c.address !== range(c)[0]);
        expect(hasHostBits(c)).toBe(formatCidr(networkOf(c)) !== formatCidr(c));
      }),
    );
  });

  it("host prefixes never have host bits; /0 has them unless the address is zero", () => {
    fc.assert(
      fc.property(anyCidr, (c) => {
        expect(hasHostBits(hostPrefix(c))).toBe(false);
        expect(hasHostBits({ ...c, prefix: 0 })).toBe(c.address !== 0n);
      }),
    );
  });

  it.each([
    ["192.168.6.1/24", true, "192.168.6.0/24"],
    ["192.168.6.0/24", false, "192.168.6.0/24"],
    ["192.168.6.255/23", true, "192.168.6.0/23"],
    ["10.1.2.3/8", true, "10.0.0.0/8"],
    ["10.99.0.2/31", false, "10.99.0.2/31"],
    ["10.99.0.3/31", true, "10.99.0.2/31"],
    ["2001:db8:1::1/64", true, "2001:db8:1::/64"],
    ["2001:db8:1:2::/48", true, "2001:db8:1::/48"],
    ["::1/0", true, "::/0"],
  ])("%s: host bits %s, network %s", (text, hostBits, net) => {
    const c = parsed(text);
    expect(hasHostBits(c)).toBe(hostBits);
    expect(formatCidr(networkOf(c))).toBe(net);
  });
});

describe("contains and overlaps", () => {
  it("contains is reflexive", () => {
    fc.assert(
      fc.property(anyCidr, (c) => {
        expect(contains(c, c)).toBe(true);
        expect(contains(networkOf(c), c)).toBe(true);
        expect(contains(c, hostPrefix(c))).toBe(true);
      }),
    );
  });

  it("contains is transitive", () => {
    fc.assert(
      fc.property(relatedCidrs(3), ([a, b, c]) => {
        if (!a || !b || !c) throw new Error("three CIDRs expected");
        if (contains(a, b) && contains(b, c)) expect(contains(a, c)).toBe(true);
      }),
    );
  });

  it("contains is antisymmetric up to host bits", () => {
    fc.assert(
      fc.property(relatedCidrs(2), ([a, b]) => {
        if (!a || !b) throw new Error("two CIDRs expected");
        if (contains(a, b) && contains(b, a)) expect(networkOf(a)).toEqual(networkOf(b));
      }),
    );
  });

  it("contains(a, b) holds exactly when every address of b is in a", () => {
    fc.assert(
      fc.property(relatedCidrs(2), seeds, ([a, b], picks) => {
        if (!a || !b) throw new Error("two CIDRs expected");
        const [first, last] = range(b);
        // CIDRs are intervals: b lies in a iff both of its ends do.
        expect(contains(a, b)).toBe(inside(first, a) && inside(last, a));
        if (contains(a, b)) {
          for (const seed of picks) expect(inside(addressIn(b, seed), a)).toBe(true);
        }
        for (const seed of picks) {
          const addr = { family: b.family, address: addressIn(b, seed) };
          expect(contains(a, hostPrefix(addr))).toBe(inside(addr.address, a));
        }
      }),
    );
  });

  it("never relates CIDRs of different families", () => {
    fc.assert(
      fc.property(cidrOf(4), cidrOf(6), (v4, v6) => {
        expect(contains(v4, v6)).toBe(false);
        expect(contains(v6, v4)).toBe(false);
        expect(overlaps(v4, v6)).toBe(false);
        expect(overlaps(v6, v4)).toBe(false);
      }),
    );
  });

  it("overlaps is symmetric and means the address ranges meet", () => {
    fc.assert(
      fc.property(fc.oneof(relatedCidrs(2), fc.tuple(anyCidr, anyCidr)), ([a, b]) => {
        if (!a || !b) throw new Error("two CIDRs expected");
        expect(overlaps(a, b)).toBe(overlaps(b, a));
        const [a1, a2] = range(a);
        const [b1, b2] = range(b);
        const meet = a.family === b.family && a1 <= b2 && b1 <= a2;
        expect(overlaps(a, b)).toBe(meet);
      }),
    );
  });

  it("a network overlaps each of its addresses and the default route", () => {
    fc.assert(
      fc.property(network, fc.bigInt({ min: 0n, max: MAX[6] }), (c, seed) => {
        const addr = hostPrefix({ family: c.family, address: addressIn(c, seed) });
        expect(overlaps(c, addr)).toBe(true);
        expect(contains({ family: c.family, address: 0n, prefix: 0 }, c)).toBe(true);
      }),
    );
  });

  it.each([
    ["192.168.0.0/16", "192.168.6.0/24", true, true],
    ["192.168.6.0/24", "192.168.0.0/16", false, true],
    ["192.168.6.0/24", "192.168.7.0/24", false, false],
    ["192.168.6.0/24", "192.168.6.1/32", true, true],
    ["192.168.6.1/24", "192.168.6.200/32", true, true],
    ["0.0.0.0/0", "203.0.113.7/32", true, true],
    ["10.99.0.0/24", "10.99.1.0/24", false, false],
    ["2001:db8::/32", "2001:db8:1::/64", true, true],
    ["2001:db8::/32", "192.0.2.0/24", false, false],
  ])("%s contains %s: %s, overlaps: %s", (a, b, inA, meet) => {
    expect(contains(parsed(a), parsed(b))).toBe(inA);
    expect(overlaps(parsed(a), parsed(b))).toBe(meet);
  });
});

describe("compareCidr", () => {
  const sign = (n: number) => Math.sign(n);

  it("is reflexive and antisymmetric, and zero only for equal CIDRs", () => {
    fc.assert(
      fc.property(fc.oneof(relatedCidrs(2), fc.tuple(anyCidr, anyCidr)), ([a, b]) => {
        if (!a || !b) throw new Error("two CIDRs expected");
        expect(compareCidr(a, a)).toBe(0);
        expect(sign(compareCidr(a, b)) + sign(compareCidr(b, a))).toBe(0);
        const equal = a.family === b.family && a.address === b.address && a.prefix === b.prefix;
        expect(compareCidr(a, b) === 0).toBe(equal);
      }),
    );
  });

  it("is transitive", () => {
    fc.assert(
      fc.property(fc.oneof(relatedCidrs(3), fc.tuple(anyCidr, anyCidr, anyCidr)), ([a, b, c]) => {
        if (!a || !b || !c) throw new Error("three CIDRs expected");
        if (compareCidr(a, b) <= 0 && compareCidr(b, c) <= 0) {
          expect(compareCidr(a, c)).toBeLessThanOrEqual(0);
        }
      }),
    );
  });

  it("sorts the same whatever the input order: IPv4 first, then by address, then prefix", () => {
    fc.assert(
      fc.property(fc.array(anyCidr, { maxLength: 20 }), (list) => {
        const sorted = [...list].sort(compareCidr);
        const reversed = [...list].reverse().sort(compareCidr);
        expect(reversed).toEqual(sorted);
        for (let i = 1; i < sorted.length; i++) {
          const [x, y] = [sorted[i - 1] as Cidr, sorted[i] as Cidr];
          expect(x.family < y.family || (x.family === y.family && x.address <= y.address)).toBe(
            true,
          );
        }
      }),
    );
  });
});

/** Each item once, tagged with its position so equal CIDRs stay apart. */
const tagged = (list: readonly Cidr[]) => list.map((cidr, i) => ({ i, cidr }));

describe("nestedPairs", () => {
  const mixed = fc.oneof(
    relatedCidrs(12),
    fc.array(anyCidr, { maxLength: 12 }),
    fc.tuple(relatedCidrs(6), relatedCidrs(6)).map(([a, b]) => [...a, ...b]),
  );

  it("finds exactly the overlapping pairs the pairwise check finds, outer first", () => {
    fc.assert(
      fc.property(mixed, (list) => {
        const items = tagged(list);
        const found = nestedPairs(items, (x) => x.cidr).map(([outer, inner]) => {
          expect(contains(outer.cidr, inner.cidr)).toBe(true);
          return [outer.i, inner.i].sort((a, b) => a - b).join(",");
        });
        const expected: string[] = [];
        items.forEach((a, ai) => {
          for (const b of items.slice(ai + 1)) {
            if (overlaps(a.cidr, b.cidr)) expected.push(`${a.i},${b.i}`);
          }
        });
        expect(found.sort()).toEqual(expected.sort());
      }),
    );
  });
});

describe("prefixLookup", () => {
  /** Networks that do not overlap: the later of any overlapping pair is dropped. */
  const disjoint = (list: readonly Cidr[]) =>
    list
      .map(networkOf)
      .filter((c, i, all) => !all.slice(0, i).some((earlier) => overlaps(earlier, c)));

  it("finds the network holding an address, as a linear scan does", () => {
    fc.assert(
      fc.property(
        fc.oneof(relatedCidrs(10), fc.array(anyCidr, { maxLength: 10 })),
        seeds,
        (list, picks) => {
          const nets = disjoint(list);
          const find = prefixLookup(nets, (c) => c);
          const probes = [
            ...nets
              .flatMap((c) => picks.map((seed) => addressIn(c, seed)))
              .map((address, k) => ({
                family: (nets[Math.floor(k / picks.length)] as Cidr).family,
                address,
              })),
            ...picks.map((address) => ({ family: 4 as const, address: address & MAX[4] })),
            ...picks.map((address) => ({ family: 6 as const, address })),
          ];
          for (const probe of probes) {
            const expected = nets.find(
              (c) => c.family === probe.family && inside(probe.address, c),
            );
            expect(find(probe)).toBe(expected);
          }
        },
      ),
    );
  });
});

describe("the dotted-quad fast path", () => {
  it("reads and writes every IPv4 address as ipaddr.js does", () => {
    fc.assert(
      fc.property(fc.ipV4(), (text) => {
        const parsed = parseAddress(text);
        expect(parsed.ok).toBe(true);
        if (parsed.ok) expect(formatAddress(parsed.value)).toBe(text);
      }),
    );
  });

  it("refuses octets over 255 and leading zeros", () => {
    for (const text of ["256.0.0.1", "10.0.0.01", "010.0.0.1", "1.2.3.4.5", "1.2.3"]) {
      expect(parseAddress(text).ok).toBe(false);
    }
  });

  it("reads any text of digits, dots and slashes as the regular expressions it replaced did", () => {
    const quad = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;
    /** The dotted quad and the prefix, as cidr.ts read them with regular expressions before. */
    const byRegex = (text: string) => {
      const [addr = "", prefix, extra] = text.split("/");
      const m = quad.exec(addr);
      if (extra !== undefined || !m || m.slice(1).some((o) => Number(o) > 255)) return "other";
      if (prefix !== undefined && (!/^\d{1,3}$/.test(prefix) || Number(prefix) > 32)) return "bad";
      const value = m.slice(1).reduce((v, o) => v * 256 + Number(o), 0);
      return `${value}/${prefix === undefined ? 32 : Number(prefix)}`;
    };
    const octet = fc.constantFrom(
      "0",
      "1",
      "00",
      "01",
      "9",
      "10",
      "99",
      "255",
      "256",
      "300",
      "1000",
      "",
    );
    const prefix = fc.constantFrom("", "/", "/0", "/8", "/24", "/32", "/33", "/024", "/1/2");
    const text = fc.oneof(
      fc
        .tuple(fc.array(octet, { minLength: 1, maxLength: 5 }), prefix)
        .map(([octets, p]) => `${octets.join(".")}${p}`),
      fc.stringMatching(/^[0-9./]{0,20}$/),
    );
    fc.assert(
      fc.property(text, (t) => {
        const expected = byRegex(t);
        const parsed = parseCidr(t);
        // Not a plain dotted quad: ipaddr.js's path, which refuses every such text.
        if (expected === "other") {
          expect(parsed.ok).toBe(false);
          return;
        }
        const got = parsed.ok ? `${parsed.value.address}/${parsed.value.prefix}` : "bad";
        expect(got).toBe(expected);
      }),
      { numRuns: 3000 },
    );
    for (const t of ["10.0.0.0/24", "0.0.0.0/0", "255.255.255.255", "1.2.3.4/33", "1.2.3.4/"]) {
      expect(parseCidr(t).ok).toBe(byRegex(t) !== "bad");
    }
  });
});

/**
 * netmask, a library of its own with string arithmetic on dotted quads, as an independent
 * oracle for the IPv4 half: cidr.ts keeps both families as one number (and IPv4 as a double on
 * the hot paths), which these answers must not depend on.
 */
describe("IPv4 against netmask", () => {
  const v4 = cidrOf(4);
  const netmaskOf = (cidr: Cidr) => new Netmask(formatCidr(cidr));

  it("finds the same network, and host bits exactly where its base differs", () => {
    fc.assert(
      fc.property(v4, (cidr) => {
        const oracle = netmaskOf(cidr);
        expect(formatCidr(networkOf(cidr))).toBe(`${oracle.base}/${oracle.bitmask}`);
        expect(hasHostBits(cidr)).toBe(oracle.base !== formatAddress(cidr));
      }),
      { numRuns: 2000 },
    );
  });

  it("agrees on containment and overlap, nested pairs included", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(v4, v4),
          relatedCidrs(2)
            .filter(([a]) => a?.family === 4)
            .map(([a, b]) => [a, b] as [Cidr, Cidr]),
        ),
        ([a, b]) => {
          const inA = netmaskOf(a).contains(netmaskOf(b));
          expect(contains(a, b)).toBe(inA);
          expect(overlaps(a, b)).toBe(inA || netmaskOf(b).contains(netmaskOf(a)));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
