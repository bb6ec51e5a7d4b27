import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/policy/load.js";
import { hubPolicy } from "../support/large-policy.js";
import { problemsOf, validPolicy } from "./fixtures.js";

describe("a policy's rollout", () => {
  it("puts the hubs first by default, then every other site", () => {
    const { intent } = parsePolicy(hubPolicy(3), "hub.yaml");
    expect(intent.rollout?.waves).toEqual([["vps"], ["s0", "s1", "s2"]]);
    expect(intent.rollout).toMatchObject({ failureBudget: 0, healthSeconds: 30 });
  });

  it("takes the declared waves in order, the sites named nowhere last", () => {
    const text = `${hubPolicy(3)}rollout:\n  waves: [[s1], [vps]]\n  failureBudget: 1\n  healthSeconds: 0\n`;
    expect(parsePolicy(text, "hub.yaml").intent.rollout).toEqual({
      waves: [["s1"], ["vps"], ["s0", "s2"]],
      failureBudget: 1,
      healthSeconds: 0,
    });
  });

  it("refuses a site that is not in the policy, or named twice", () => {
    const p = validPolicy();
    p.rollout = { waves: [["home", "cabin"], ["home"]] };
    expect(problemsOf(p)).toEqual([
      "rollout.waves[0][1]: no site cabin in this policy",
      "rollout.waves[1][0]: home is already in wave 0; name a site once",
    ]);
  });
});
