import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { NftSet } from "../../src/compile/desired.js";
import { formatPlan, planJson } from "../../src/plan/format.js";
import { elementDetails, elementScript, ruleDetails } from "../../src/plan/nft-changes.js";
import { parseNftListing } from "../../src/plan/nft-table.js";
import type { Plan } from "../../src/plan/types.js";
import { decode } from "./fixture-json.js";

const set = (name: string, elements: string[], merge = false): NftSet => ({
  name,
  kind: "set",
  type: merge ? "ipv4_addr" : "ipv4_addr . inet_service",
  interval: merge,
  elements,
});

const listing = (sets: Record<string, { elements: string; merge?: boolean }>) =>
  parseNftListing(
    `table inet netpol {\n${Object.entries(sets)
      .map(
        ([name, s]) =>
          `\tset ${name} {\n\t\ttype ipv4_addr\n\t\tflags interval\n${s.merge ? "\t\tauto-merge\n" : ""}\t\telements = { ${s.elements} }\n\t}`,
      )
      .join("\n")}\n}\n`,
  );

describe("which set elements a plan adds and takes out", () => {
  it("names the port and the prefix, not only that the elements differ", () => {
    const table = listing({
      ports: { elements: "tcp . 22, tcp . 2222" },
      gone: { elements: "10.0.0.1" },
    });
    expect(elementDetails([set("ports", ["tcp . 2222", "tcp . 8080"])], table)).toEqual([
      "set ports: + tcp . 8080",
      "set ports: - tcp . 22",
      "set gone: - 10.0.0.1",
    ]);
  });

  it("says nothing of elements nft only prints otherwise (a host prefix bare, merged ranges)", () => {
    const table = listing({
      hosts: { elements: "10.0.0.1, 192.168.0.0/16" },
      merged: { elements: "10.0.0.0/8", merge: true },
    });
    expect(
      elementDetails(
        [
          set("hosts", ["10.0.0.1/32", "192.168.0.0/16"]),
          set("merged", ["10.0.0.0/8", "10.1.0.0/16"], true),
        ],
        table,
      ),
    ).toEqual([]);
    expect(
      elementDetails(
        [set("merged", ["10.0.0.0/8", "172.16.0.0/12"], true)],
        listing({ merged: { elements: "10.0.0.0/8", merge: true } }),
      ),
    ).toEqual(["set merged: + 172.16.0.0/12"]);
  });
});

describe("which rules a plan adds and takes out", () => {
  const render = (rules: string[], sets = "set a {\n    type ipv4_addr;\n  }\n") =>
    `table inet netpol {\n  ${sets}\n  chain filter_forward {\n    type filter hook forward priority filter; policy accept;\n${rules.map((r) => `    ${r}\n`).join("")}  }\n}\n`;

  it("compares the render of the policy in force with the new one, chain by chain", () => {
    expect(
      ruleDetails(
        render(['iifname "a" drop', 'iifname "b" drop']),
        render(['iifname "b" drop', 'iifname "c" drop'], ""),
      ),
    ).toEqual([
      'chain filter_forward: - iifname "a" drop',
      'chain filter_forward: + iifname "c" drop',
      "- set a",
    ]);
  });
});

describe("the plan's human and JSON forms", () => {
  const plan = decode<Plan>(
    readFileSync(path.join(import.meta.dirname, "fixtures/nft-elements-change/plan.json"), "utf8"),
  );

  it("lists each element under the nftables line, and in --json as details", () => {
    const text = formatPlan(plan, "host");
    expect(text).toContain(
      "  ~ nftables table inet netpol (set elements differ)\n      set egress_1_except4: + 198.18.0.0/15\n      set egress_1_except4: - 10.99.0.0/24\n",
    );
    expect(planJson(plan).changes.find((c) => c.kind === "nft")).toMatchObject({
      op: "replace",
      details: expect.arrayContaining(["map egress_from4: + 192.168.7.0/24 : jump egress_1"]),
    });
  });
});

describe("a change of set elements alone, as element commands", () => {
  const map = (name: string, elements: string[]): NftSet => ({
    name,
    kind: "map",
    type: "ipv4_addr : verdict",
    interval: true,
    elements,
  });
  const maps = (name: string, elements: string) =>
    parseNftListing(
      `table inet netpol {\n\tmap ${name} {\n\t\ttype ipv4_addr : verdict\n\t\tflags interval\n\t\telements = { ${elements} }\n\t}\n}\n`,
    );

  it("takes a map's key out and puts it in with its value, removals first", () => {
    const table = maps("from4", "10.0.0.0/24 : jump egress_1, 10.0.1.0/24 : jump egress_1");
    const wanted = map("from4", ["10.0.0.0/24 : jump egress_1", "10.250.0.0/24 : jump egress_1"]);
    expect(elementScript([wanted], table)).toBe(
      "delete element inet netpol from4 { 10.0.1.0/24 }\nadd element inet netpol from4 { 10.250.0.0/24 : jump egress_1 }\n",
    );
  });

  it("cuts a prefix out of an auto-merge set's merged range by taking the range out and adding what is left", () => {
    // nft holds 10.0.0.0/24 … 10.0.3.0/24 as one range, and cannot delete a piece of it.
    const table = listing({ src: { elements: "10.0.0.0-10.0.3.255, 10.9.0.0/24", merge: true } });
    const wanted = set(
      "src",
      ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.9.0.0/24", "10.250.0.0/24"],
      true,
    );
    expect(elementScript([wanted], table)).toBe(
      "delete element inet netpol src { 10.0.0.0/22 }\nadd element inet netpol src { 10.0.0.0-10.0.2.255, 10.250.0.0/24 }\n",
    );
  });

  it("has no commands where the elements are the same, or the table lacks a set (loaded whole)", () => {
    const table = listing({ src: { elements: "10.0.0.0-10.0.1.255", merge: true } });
    expect(
      elementScript([set("src", ["10.0.0.0/24", "10.0.1.0/24"], true)], table),
    ).toBeUndefined();
    expect(elementScript([set("other", ["10.0.0.0/24"], true)], table)).toBeUndefined();
    expect(elementScript([set("src", ["10.0.0.0/24"], true)], undefined)).toBeUndefined();
  });
});
