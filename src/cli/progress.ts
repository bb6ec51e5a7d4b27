import type { Target } from "../apply/target.js";
import { type Runner, withRun } from "../system/runner.js";
import type { OutputOptions } from "./output.js";

/**
 * A runner that shows which apply step runs, on one status line on stderr rewritten in place.
 * Every command already names its step ("reading routes and rules", "routing", "nftables", …);
 * reads after the first change are the verification.
 */
function withProgress(inner: Runner): { runner: Runner; done: () => void } {
  const started = Date.now();
  let step: string | undefined;
  let changing = false;
  const show = () => {
    const reading = step === undefined || step.startsWith("reading");
    const what = step ?? "reading the live state";
    const phase = !reading ? `applying: ${what}` : changing ? `verifying: ${what}` : what;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(`\r\u001b[K${phase} (${inner.spawned} commands, ${seconds}s)`);
  };
  return {
    runner: withRun(inner, (tool, args, options) => {
      step = options?.step;
      changing ||= step !== undefined && !step.startsWith("reading");
      show();
      return inner.run(tool, args, options);
    }),
    done: () => process.stderr.write("\r\u001b[K"),
  };
}

/**
 * The target with progress shown while it applies, for a person watching: both streams on a
 * terminal, no --json, no --quiet. `done` clears the line before the report is printed.
 */
export function showingProgress(
  target: Target,
  opts: OutputOptions,
): { target: Target; done: () => void } {
  const watched = !opts.json && !opts.quiet && process.stdout.isTTY && process.stderr.isTTY;
  if (!watched) return { target, done: () => {} };
  const { runner, done } = withProgress(target.runner);
  return { target: { ...target, runner }, done };
}
