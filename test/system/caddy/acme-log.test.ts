import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { lastIssuanceErrors } from "../../../src/system/caddy/acme-log.js";

// Caddy 2.6.2's certificate log, captured from a Caddy getting certificates from Pebble: one
// name obtained and renewed, one whose DNS points where nothing answers port 80.
const CAPTURED = readFileSync(new URL("../captured/caddy-acme.log", import.meta.url), "utf8");

const line = (o: Record<string, unknown>) => JSON.stringify(o);

describe("the last issuance error of each name, from Caddy's certificate log", () => {
  it("keeps the CA's verdict on the challenge, and nothing for a name obtained since", () => {
    const errors = lastIssuanceErrors(CAPTURED);
    expect([...errors.keys()]).toEqual(["nowhere.example.org"]);
    expect(errors.get("nowhere.example.org")).toEqual({
      at: "2026-12-06T04:12:36.306Z",
      message: expect.stringMatching(
        /^Get "http:\/\/nowhere\.example\.org:80\/\.well-known\/acme-challenge\/.*": dial tcp 192\.0\.2\.99:80: connect: no route to host$/,
      ),
      problem: "urn:ietf:params:acme:error:connection",
    });
  });

  it("forgets an error once a certificate came after it, and keeps Caddy's own words without a problem type", () => {
    const failed = (ts: number) =>
      line({
        level: "error",
        ts,
        msg: "could not get certificate from issuer",
        identifier: "Blog.example.org",
        error: "registering account: no route to host",
      });
    const obtained = line({
      level: "info",
      ts: 101,
      msg: "certificate obtained successfully",
      identifier: "blog.example.org",
    });
    expect(lastIssuanceErrors(`${failed(100)}\n${obtained}\n`).size).toBe(0);
    expect(lastIssuanceErrors(`${obtained}\n${failed(102)}\n`).get("blog.example.org")).toEqual({
      at: "1970-01-01T00:01:42.000Z",
      message: "registering account: no route to host",
    });
  });

  it("passes over a line cut by the log's rotation and lines that are not Caddy's", () => {
    const cut = CAPTURED.slice(CAPTURED.indexOf("\n") + 40);
    expect(() => lastIssuanceErrors(`garbage\n{"half":\n${cut}`)).not.toThrow();
    expect([...lastIssuanceErrors(cut).keys()]).toEqual(["nowhere.example.org"]);
  });
});
