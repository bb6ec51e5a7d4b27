import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { compileSite } from "../../../src/compile/compile.js";
import { checkedPart } from "../../../src/fleet/agent/part.js";
import { type Desired, desiredSchema } from "../../../src/fleet/documents.js";
import { preparePolicy } from "../../../src/fleet/prepare.js";
import { desiredOf } from "../../../src/fleet/publish.js";
import { stateKey } from "../../../src/fleet/slice.js";
import { parsePolicy } from "../../../src/policy/load.js";
import { hubPolicy } from "../../support/large-policy.js";

const head = { serial: 3, waves: [], failureBudget: 0, healthSeconds: 0 } as const;

/** Each site's desired value as an agent reads it from etcd: through JSON and the schema. */
function partsOf(text: string): Map<string, Desired> {
  const prepared = preparePolicy(text, "fleet.yaml");
  const parts = new Map<string, Desired>();
  for (const site of prepared.sites.keys()) {
    const wire = JSON.stringify(desiredOf(prepared, { ...head, sites: [] } as never, site));
    parts.set(site, desiredSchema.parse(JSON.parse(wire)));
  }
  return parts;
}

const refused = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error("not refused");
};

describe("a site's part as the publisher compiled it", () => {
  it("round-trips: the agent gets exactly the state the whole policy compiles to for its site", async () => {
    for (const text of [
      hubPolicy(6),
      await readFile(path.join(import.meta.dirname, "../../../policies/c-combined.yaml"), "utf8"),
    ]) {
      const { intent } = parsePolicy(text, "fleet.yaml");
      for (const [site, desired] of partsOf(text)) {
        const state = checkedPart(desired, site);
        expect(state, site).toBeDefined();
        expect(stateKey(state as never), site).toBe(stateKey(compileSite(intent, site)));
      }
    }
  });

  it("hands a spoke its hub's tunnel address to ping after an apply", () => {
    const s1 = partsOf(hubPolicy(3)).get("s1");
    expect(s1?.peers).toHaveLength(1);
  });

  it("refuses a part whose text no longer matches its hash, with one clear error", () => {
    const desired = partsOf(hubPolicy(3)).get("s1") as Desired;
    const err = refused(() =>
      checkedPart({ ...desired, text: desired.text.replace("s1", "s9") }, "s1"),
    );
    expect(err.code).toBe("NETPOL_E_FLEET_PART");
    expect(err.message).toMatch(
      /^revision 3: the part etcd holds for s1 does not match its hash .*nothing applied: publish the policy again/,
    );
  });

  it("refuses a state compiled for another site, of another shape, or reaching past netpol's own", () => {
    const parts = partsOf(hubPolicy(3));
    const s1 = parts.get("s1") as Desired;
    const state = s1.state as Record<string, unknown>;
    const withState = (s: unknown) => ({ ...s1, state: s });
    expect(refused(() => checkedPart(withState(parts.get("s2")?.state), "s1")).message).toMatch(
      /was compiled for site "s2"/,
    );
    expect(refused(() => checkedPart(withState({ ...state, extra: 1 }), "s1")).message).toMatch(
      /holds no compiled state this netpol reads/,
    );
    const core = { ...state, sysctls: [["kernel.core_pattern", "|/tmp/x"]] };
    expect(refused(() => checkedPart(withState(core), "s1")).message).toMatch(
      /sets kernel setting kernel\.core_pattern=\|\/tmp\/x, which netpol never sets/,
    );
    const chains = state.nftChains as { name: string; rules: string[] }[];
    const injected = chains.map((c, i) =>
      i === 0 ? { ...c, rules: [...c.rules, "accept\nflush ruleset"] } : c,
    );
    expect(chains.length).toBeGreaterThan(0);
    expect(
      refused(() => checkedPart(withState({ ...state, nftChains: injected }), "s1")).message,
    ).toMatch(/line break or control character in the state\.nftChains\.0\.rules\./);
  });

  it("leaves a part without a compiled state (an older publisher's) to be validated", () => {
    const { state: _, ...older } = partsOf(hubPolicy(3)).get("s1") as Desired;
    expect(checkedPart(older, "s1")).toBeUndefined();
  });
});
