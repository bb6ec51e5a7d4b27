import { describe, expect, it } from "vitest";
import {
  MAX_CONFIRM_SECONDS,
  parseConfirmSeconds,
} from "../../../src/apply/rollback/confirm-window.js";

describe("the --confirm window", () => {
  it.each(["1", "60", "0120", String(MAX_CONFIRM_SECONDS)])("takes %s", (text) => {
    expect(parseConfirmSeconds(text)).toBe(Number(text));
  });

  it.each([
    ["exponent notation that overflows the deadline", "1e99"],
    ["exponent notation", "1e3"],
    ["hexadecimal", "0x10"],
    ["octal", "0o17"],
    ["binary", "0b11"],
    ["beyond Node's timer (2,147,484 s)", "2147484"],
    ["more than a day", String(MAX_CONFIRM_SECONDS + 1)],
    ["zero", "0"],
    ["a negative number", "-5"],
    ["a fraction", "2.5"],
    ["spaces", " 5 "],
    ["a sign", "+5"],
    ["nothing", ""],
    ["a word", "soon"],
  ])("refuses %s (%s) with a usage error naming the bounds", (_why, text) => {
    let err: unknown;
    try {
      parseConfirmSeconds(text);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: "NETPOL_E_USAGE" });
    expect(String((err as Error).message)).toContain(`from 1 to ${MAX_CONFIRM_SECONDS}`);
  });
});
