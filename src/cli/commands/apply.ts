import { spawn } from "node:child_process";
import type { Command } from "commander";
import { applySite } from "../../apply/apply.js";
import { armRevert, confirmApply, revertIfUnconfirmed } from "../../apply/confirm.js";
import { readRecordText } from "../../apply/record.js";
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

/** The detached process that reverts an unconfirmed apply; it outlives this one. */
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
    const previous = await readRecordText(target.stateDir, target.scope);
    const result = await applySite(
      target,
      { ...policy, site: opts.site },
      whoAmI("cli"),
      async (r) => {
        if (seconds === undefined || !r.restore) return;
        await armRevert(target, r.restore, previous, seconds, (id) => startRevertTimer(opts, id));
      },
    ).finally(done);
    const confirmBy = result.changed ? seconds : undefined;
    const netns = opts.netns ? ` --netns ${opts.netns}` : "";
    report(
      opts,
      () =>
        formatPlan(result.plan, target.scope) +
        (result.changed ? `applied and verified (${target.runner.spawned} commands run)\n` : "") +
        (confirmBy !== undefined
          ? `run \`netpol confirm${netns}\` within ${confirmBy}s, or this apply is reverted\n`
          : ""),
      () => ({
        plan: planJson(result.plan),
        changed: result.changed,
        commandsRun: target.runner.spawned,
        policyHash: result.record.policyHash,
        ...(confirmBy !== undefined ? { confirmWithinSeconds: confirmBy } : {}),
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
    program
      .command("revert-unconfirmed", { hidden: true })
      .argument("<id>", "the pending apply's id"),
  ).action(async (id: string, opts: TargetOptions) => {
    await revertIfUnconfirmed(targetFrom(opts), id);
  });
}
