import { describe, expect, it } from "vitest";
import { targetFrom } from "../../src/cli/target.js";

describe("the CLI's target", () => {
  it("names the target by the options given", () => {
    const target = targetFrom({ netns: "X", stateDir: "/tmp/D" });
    expect(target.files).toMatchObject({ scope: "netns-X", stateDir: "/tmp/D" });
    expect(target.files.naming).toMatchObject({ netns: "X", stateDir: "/tmp/D" });
  });
});
