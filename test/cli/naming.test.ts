import { describe, expect, it } from "vitest";
import { DEFAULT_STATE_DIR, hintFor, namingOf } from "../../src/cli/naming.js";

describe("the CLI's naming of its target, and its hints", () => {
  it("does not repeat a default state directory", () => {
    expect(namingOf({ netns: "X", stateDir: DEFAULT_STATE_DIR })).toEqual({
      netns: "X",
      stateDir: undefined,
      keyDir: undefined,
    });
  });

  it("spells a hint for a failed command line with the namespace and directories it was given", () => {
    const args = ["apply", "p.yaml", "--confirm", "20", "--netns", "X", "--state-dir=/tmp/D"];
    expect(hintFor({ verb: "confirm" }, args)).toBe("netpol confirm --netns X --state-dir /tmp/D");
    expect(
      hintFor({ verb: "plan", args: ["p.yaml", "--site", "home"] }, [...args, "--key-dir", "/k"]),
    ).toBe("netpol plan p.yaml --site home --netns X --state-dir /tmp/D --key-dir /k");
  });
});
