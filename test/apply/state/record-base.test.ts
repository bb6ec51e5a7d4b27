import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyEdit, editFrom, worthKeeping } from "../../../src/apply/state/record-base.js";

describe("the edit from a base text", () => {
  it("makes the text from the base, whatever the two are", () => {
    // Long runs of one character make the coarse chunks (64 Ki, 4 Ki, 256) match, then stop.
    const text = fc
      .array(fc.oneof(fc.string(), fc.constantFrom("a".repeat(70_000), "b".repeat(5000), "é😀")), {
        maxLength: 6,
      })
      .map((parts) => parts.join(""));
    fc.assert(
      fc.property(text, text, (base, next) => {
        const edit = editFrom(base, next);
        expect(applyEdit(base, edit)).toBe(next);
        expect(edit.text.length).toBeLessThanOrEqual(next.length);
      }),
      { numRuns: 300 },
    );
  });

  it("is the changed line alone for a one-line change, and refuses a base it does not fit", () => {
    const base = `${"x: 1\n".repeat(50_000)}key: old\n${"y: 2\n".repeat(50_000)}`;
    const edit = editFrom(base, base.replace("key: old", "key: new"));
    expect(edit).toEqual({ at: 250_005, cut: 3, text: "new" });
    expect(worthKeeping(edit, base)).toBe(true);
    expect(applyEdit("short", edit)).toBeUndefined();
    expect(worthKeeping(editFrom("", base), base)).toBe(false);
  });
});
