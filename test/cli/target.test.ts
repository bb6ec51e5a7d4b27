import { describe, expect, it } from "vitest";
import { DEFAULT_STATE_DIR, hintFor, namingOf, targetFrom } from "../../src/cli/target.js";

describe("the CLI's target and its hints", () => {
  it("names the target by the options given: a default state directory is not repeated", () => {
    expect(namingOf({ netns: "X", stateDir: DEFAULT_STATE_DIR })).toEqual({
      netns: "X",
      stateDir: undefined,
      keyDir: undefined,
    });
    const target = targetFrom({ netns: "X", stateDir: "/tmp/D" });
    expect(target.files).toMatchObject({ scope: "netns-X", stateDir: "/tmp/D" });
    expect(target.files.naming).toMatchObject({ netns: "X", stateDir: "/tmp/D" });
  });

  it("spells a hint for a failed command line with the namespace and directories it was given", () => {
    const args = ["apply", "p.yaml", "--confirm", "20", "--netns", "X", "--state-dir=/tmp/D"];
    expect(hintFor({ verb: "confirm" }, args)).toBe("netpol confirm --netns X --state-dir /tmp/D");
    expect(
      hintFor({ verb: "plan", args: ["p.yaml", "--site", "home"] }, [...args, "--key-dir", "/k"]),
    ).toBe("netpol plan p.yaml --site home --netns X --state-dir /tmp/D --key-dir /k");
  });
});
