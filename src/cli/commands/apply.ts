import { spawn } from "node:child_process";
import type { Command } from "commander";
import { applySite } from "../../apply/apply.js";
import { confirmApply, revertIfUnconfirmed, revertNow } from "../../apply/confirm.js";
import { NetpolError } from "../../errors.js";
import { formatPlan, planJson } from "../../plan/format.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { readPolicyFile } from "../policy-file.js";
import { showingProgress } from "../progress.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface ApplyOptions extends TargetOptions, OutputOptions {
  site: string;
  keyDir?: string;
  confirm?: string;
}

/** The script this process runs (bin/netpol.js): the CLI again, bundled or not. */
const MAIN = process.argv[1] ?? "";

/**
 * The detached process that reverts an unconfirmed apply. `detached` makes it the leader of a
 * session of its own (setsid), so the hang-up of this terminal or a kill of this process does
 * not reach it.
 */
function startRevertTimer(opts: TargetOptions, id: string): number | undefined {
  const args = [MAIN, "revert-unconfirmed", id, "--state-dir", opts.stateDir ?? ""];
  if (opts.netns) args.push("--netns", opts.netns);
  const child = spawn(process.execPath, args, { detached: true, stdio: "ignore" });
  child.unref();
  return child.pid;
}

export function registerApply(program: Command): void {
  targetOptions(
    outputOptions(program.command("apply"))
      .description("make the live state match the policy; roll back if any step fails")
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site this machine (or namespace) is")
      .option("--key-dir <dir>", "directory holding the private key files (default: the policy's)")
      .option(
        "--confirm <seconds>",
        "revert by itself unless `netpol confirm` runs within this time",
      ),
  ).action(async (file: string, opts: ApplyOptions) => {
    const seconds = opts.confirm === undefined ? undefined : Number(opts.confirm);
    if (seconds !== undefined && !(Number.isInteger(seconds) && seconds > 0)) {
      throw new NetpolError(
        "NETPOL_E_USAGE",
        `--confirm takes a whole number of seconds, not ${opts.confirm}`,
      );
    }
    const policy = await readPolicyFile(file, opts.keyDir);
    const { target, done } = showingProgress(targetFrom(opts), opts);
    const result = await applySite(
      target,
      { ...policy, site: opts.site },
      whoAmI("cli"),
      seconds === undefined
        ? {}
        : { confirm: { seconds, startTimer: (id) => startRevertTimer(opts, id) } },
    ).finally(done);
    const pending = result.pending;
    const netns = opts.netns ? ` --netns ${opts.netns}` : "";
    report(
      opts,
      () =>
        result.notes.map((n) => `note: ${n}\n`).join("") +
        formatPlan(result.plan, target.scope) +
        (result.changed ? `applied and verified (${target.runner.spawned} commands run)\n` : "") +
        (pending
          ? `run \`netpol confirm${netns}\` before ${pending.deadline} (${seconds}s), or this apply is reverted\n`
          : ""),
      () => ({
        plan: planJson(result.plan),
        changed: result.changed,
        commandsRun: target.runner.spawned,
        policyHash: result.record.policyHash,
        notes: result.notes,
        ...(pending ? { confirmWithinSeconds: seconds, confirmDeadline: pending.deadline } : {}),
      }),
    );
  });

  targetOptions(
    outputOptions(program.command("confirm").description("keep an apply made with --confirm")),
  ).action(async (opts: TargetOptions & OutputOptions) => {
    await confirmApply(targetFrom(opts));
    report(
      opts,
      () => "confirmed\n",
      () => ({ confirmed: true }),
    );
  });

  targetOptions(
    outputOptions(program.command("revert").description("undo an apply made with --confirm now")),
  ).action(async (opts: TargetOptions & OutputOptions) => {
    await revertNow(targetFrom(opts));
    report(
      opts,
      () => "reverted: the state before the apply is back\n",
      () => ({ reverted: true }),
    );
  });

  targetOptions(
    program
      .command("revert-unconfirmed", { hidden: true })
      .argument("<id>", "the pending apply's id"),
  ).action(async (id: string, opts: TargetOptions) => {
    await revertIfUnconfirmed(targetFrom(opts), id);
  });
}
