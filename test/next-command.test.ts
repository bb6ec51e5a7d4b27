import { describe, expect, it } from "vitest";
import { commandLine } from "../src/next-command.js";

describe("the next command's one spelling", () => {
  it("repeats the namespace and the state directory the target was named by", () => {
    expect(commandLine({ verb: "confirm" }, { netns: "X", stateDir: "/tmp/D" })).toBe(
      "netpol confirm --netns X --state-dir /tmp/D",
    );
    expect(commandLine({ verb: "revert" }, {})).toBe("netpol revert");
  });

  it("repeats the key directory for a command that reads a policy's key or token files", () => {
    const naming = { netns: "X", keyDir: "/etc/netpol/keys" };
    expect(
      commandLine({ verb: "confirm", args: ["p.yaml", "--site", "home", "--all"] }, naming),
    ).toBe("netpol confirm p.yaml --site home --all --netns X --key-dir /etc/netpol/keys");
    expect(commandLine({ verb: "confirm" }, naming)).toBe("netpol confirm --netns X");
    expect(commandLine({ verb: "status" }, naming)).toBe("netpol status --netns X");
  });

  it("quotes what a shell would split", () => {
    expect(commandLine({ verb: "recover" }, { stateDir: "/tmp/my state" })).toBe(
      "netpol recover --state-dir '/tmp/my state'",
    );
  });
});
