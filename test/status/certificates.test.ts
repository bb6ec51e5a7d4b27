import { describe, expect, it } from "vitest";
import { certificateStatus, challengeReason } from "../../src/status/certificates.js";

const OWN = ["203.0.113.70", "2001:db8:170::70"];
const P = "urn:ietf:params:acme:error:";
const at = "2026-12-06T04:12:36.306Z";

describe("the named reason a name's HTTP-01 challenge cannot succeed", () => {
  it("names DNS that points elsewhere (Pebble's words)", () => {
    const message =
      'Get "http://nowhere.example.org:80/.well-known/acme-challenge/x": dial tcp 192.0.2.99:80: connect: no route to host';
    expect(
      challengeReason("nowhere.example.org", { at, message, problem: `${P}connection` }, OWN),
    ).toBe(
      "nowhere.example.org resolves to 192.0.2.99, which is not this site (203.0.113.70, 2001:db8:170::70): point its DNS at this site, or, behind 1:1 NAT, forward port 80 of 192.0.2.99 here",
    );
  });

  it("names a port 80 that does not answer at the site's own address (Let's Encrypt's words)", () => {
    const message =
      "authorization failed: HTTP 400 urn:ietf:params:acme:error:connection - 203.0.113.70: Fetching http://blog.example.org/.well-known/acme-challenge/x: Timeout during connect (likely firewall problem)";
    expect(
      challengeReason("blog.example.org", { at, message, problem: `${P}connection` }, OWN),
    ).toBe(
      "the CA could not connect to port 80 of 203.0.113.70: open port 80 to this site's Caddy (firewall, security group, or a raw port published there)",
    );
  });

  it("names a name without DNS, a stranger answering port 80, and a rate limit", () => {
    const dns = { at, message: "DNS problem: NXDOMAIN looking up A", problem: `${P}dns` };
    expect(challengeReason("new.example.org", dns, OWN)).toMatch(
      /^the CA finds no address for new\.example\.org in DNS/,
    );
    const stranger = {
      at,
      message:
        "203.0.113.70: Invalid response from http://blog.example.org/.well-known/acme-challenge/x: 404",
      problem: `${P}unauthorized`,
    };
    expect(challengeReason("blog.example.org", stranger, OWN)).toBe(
      "the CA reached port 80 of 203.0.113.70 but did not get Caddy's answer to the challenge: something else answers HTTP there",
    );
    expect(
      challengeReason(
        "blog.example.org",
        { at, message: "too many", problem: `${P}rateLimited` },
        OWN,
      ),
    ).toMatch(/rate limit/);
  });

  it("names nothing for an error that is not the challenge's (Caddy's message speaks for itself)", () => {
    expect(
      challengeReason("blog.example.org", { at, message: "registering account: EOF" }, OWN),
    ).toBeUndefined();
  });
});

describe("a hostname's certificate status", () => {
  const pebble = {
    issuer: "Pebble Intermediate CA 202eb2",
    notBefore: "2026-12-06T04:01:13.000Z",
    notAfter: "2031-12-06T04:01:12.000Z",
    serial: "4DE345FE676E103D",
  };

  it("holds the certificate served for the name", () => {
    expect(
      certificateStatus(
        "blog.example.org",
        "blog",
        { ...pebble, names: ["blog.example.org"] },
        undefined,
        OWN,
      ),
    ).toEqual({
      hostname: "blog.example.org",
      service: "blog",
      served: pebble,
      servedError: null,
      lastIssuanceError: null,
      reason: null,
    });
  });

  it("says when Caddy serves a certificate for other names, or none", () => {
    const other = certificateStatus(
      "blog.example.org",
      "blog",
      { ...pebble, names: ["own.example.org"] },
      undefined,
      OWN,
    );
    expect(other.servedError).toBe(
      "the certificate served is for own.example.org, not blog.example.org",
    );
    const none = certificateStatus(
      "nowhere.example.org",
      "nowhere",
      { error: "no certificate for the name (TLS alert: internal error)" },
      {
        at,
        message: "dial tcp 192.0.2.99:80: connect: no route to host",
        problem: `${P}connection`,
      },
      OWN,
    );
    expect(none).toMatchObject({
      served: null,
      servedError: "no certificate for the name (TLS alert: internal error)",
      reason: expect.stringContaining("resolves to 192.0.2.99, which is not this site"),
    });
  });
});
