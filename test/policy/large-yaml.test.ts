import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { NetpolError } from "../../src/errors.js";
import { parsePolicy } from "../../src/policy/load.js";
import { readYaml } from "../../src/policy/read-yaml.js";
import { egressPolicy, hubPolicy } from "../support/large-policy.js";

/**
 * A large policy is read a slice at a time (src/policy/yaml-chunks.ts): the data must be what
 * reading the whole text gives, and a mistake anywhere must be reported as it is for a small
 * policy, at its own line.
 */

const problemsOf = (text: string) => {
  try {
    parsePolicy(text, "big.yaml", { maxBytes: Number.MAX_SAFE_INTEGER });
  } catch (err) {
    if (err instanceof NetpolError) return err.diagnostics;
    throw err;
  }
  throw new Error("the policy was accepted");
};
/** The line of the last occurrence of `needle`, which starts with the line's first character. */
const lineOf = (text: string, needle: string) =>
  text.slice(0, text.lastIndexOf(needle)).split("\n").length;

describe("reading a large policy in slices", () => {
  it.each([
    ["egresses", egressPolicy(3000)],
    ["a hub tunnel", hubPolicy(1000)],
  ])("gives the data the whole text gives: %s", (_name, text) => {
    const read = readYaml(text, "big.yaml");
    expect(read.ok).toBe(true);
    expect(read.ok && read.data).toEqual(load(text));
  });

  it("reports a site named twice, far apart, as a duplicate key at its line", () => {
    const text = hubPolicy(1000).replace("\n  s900: ", "\n  s3: ");
    const [problem, ...rest] = problemsOf(text);
    expect(rest).toEqual([]);
    expect(problem?.message).toMatch(/^YAML: .*unique/i);
    expect(problem?.line).toBe(lineOf(text, "  s3: {"));
  });

  it("reports a `__proto__` site in a large policy", () => {
    const text = hubPolicy(1000).replace("\n  s900: ", "\n  __proto__: ");
    const [problem] = problemsOf(text);
    expect(problem?.message).toContain("`__proto__` is not a name netpol takes");
  });

  it("reports a syntax error deep in a slice at its own line", () => {
    const text = egressPolicy(3000).replace(
      "\n      - { name: n2500,",
      "\n      - { name: n2500,,",
    );
    const [problem] = problemsOf(text);
    expect(problem?.message).toMatch(/^YAML: /);
    expect(problem?.line).toBe(lineOf(text, "      - { name: n2500,,"));
  });
});
