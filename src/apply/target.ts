import type { Runner } from "../system/runner.js";
import type { StateFiles } from "./state/files.js";

/**
 * Where a command works: the runner that reaches the namespace, and the state files that belong
 * to it. Built once, by `targetOf`, so the scope a record is filed under and the namespace its
 * commands run in cannot disagree. Everything the core needs is passed in: it reads nothing
 * behind your back.
 */
export interface Target {
  readonly runner: Runner;
  readonly files: StateFiles;
}

export function targetOf(runner: Runner, stateDir: string): Target {
  const netns = runner.netns;
  return { runner, files: { stateDir, scope: netns ? `netns-${netns}` : "host", netns } };
}
