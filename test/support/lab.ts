import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { PolicyInput } from "../../src/apply/source/input.js";
import { type Target, targetOf } from "../../src/apply/target.js";
import { type Lab, labDown, labUp } from "../../src/lab/lab.js";
import { labPolicy } from "../../src/lab/policy.js";
import { parsePolicy } from "../../src/policy/load.js";
import { createRunner } from "../../src/system/runner.js";
import { uniqueSuffix } from "./netns.js";
import type { TestNode } from "./node.js";

/** Arguments that point a netpol command at the lab's home site. */
export function homeArgs(lab: Lab): string[] {
  return [
    `${lab.dir}/policy.yaml`,
    "--site",
    "home",
    "--netns",
    lab.names.ns("home"),
    "--state-dir",
    `${lab.dir}/state`,
  ];
}

/** Deletes home's fail-closed route by hand, as an operator (or another tool) might. */
export async function deleteFailClosedRoute(home: TestNode): Promise<void> {
  const route = ["table", "3", "unreachable", "0.0.0.0/0", "metric", "4294967295"];
  await home.run("ip", ["route", "del", ...route]);
}

/** A fresh lab with a unique prefix; `down()` removes it whatever happened. */
export async function startLab(): Promise<{ lab: Lab; down: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "netpol-lab-"));
  const prefix = `t${uniqueSuffix().slice(0, 4)}`;
  try {
    const lab = await labUp(prefix, dir);
    await writeFile(path.join(dir, "policy.yaml"), labPolicy(lab.names, lab.keys), { mode: 0o600 });
    return { lab, down: async () => void (await labDown(dir)) };
  } catch (err) {
    await labDown(dir);
    throw err;
  }
}

export function siteTarget(
  lab: Lab,
  role: "home" | "vps",
  runner = createRunner(lab.names.ns(role)),
): Target {
  return targetOf(runner, path.join(lab.dir, "state"));
}

/** The lab's policy for one site, optionally edited as text first. */
export function labInput(
  lab: Lab,
  site: "home" | "vps",
  edit: (text: string) => string = (t) => t,
): PolicyInput {
  const text = edit(labPolicy(lab.names, lab.keys));
  return { ...parsePolicy(text, path.join(lab.dir, "policy.yaml")), keyDir: lab.dir, site };
}

/** A policy under which the site owns nothing. */
export function emptyInput(lab: Lab, site: "home" | "vps"): PolicyInput {
  return {
    ...parsePolicy(`version: 1\nsites:\n  ${site}: {}\n`, "empty.yaml"),
    keyDir: lab.dir,
    site,
  };
}
