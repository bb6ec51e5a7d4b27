import type { Command } from "commander";
import { applySite } from "../../apply/apply.js";
import { confirmApply, revertIfUnconfirmed, revertNow } from "../../apply/rollback/confirm.js";
import { parseConfirmSeconds } from "../../apply/rollback/confirm-window.js";
import { readPolicyFile } from "../../apply/source/file.js";
import { NetpolError } from "../../errors.js";
import { commandLine } from "../../next-command.js";
import { formatPlan, formatPlanJson, planJson } from "../../plan/format.js";
import { applyRemote, confirmRemote, otherSites } from "../all-sites.js";
import { guardFleetSite } from "../fleet-managed.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { choosePolicy } from "../policy-source.js";
import { showingProgress } from "../progress.js";
import { startRevertTimer } from "../revert-timer.js";
import { guardedChange } from "../signals.js";
import { type TargetOptions, targetFrom, targetOptions, whoAmI } from "../target.js";

interface ApplyOptions extends TargetOptions, OutputOptions {
  site?: string;
  inForce?: boolean;
  keyDir?: string;
  confirm?: string;
  all?: boolean;
  replaceSite?: boolean;
  leaveFleet?: boolean;
}

interface ConfirmOptions extends TargetOptions, OutputOptions {
  all?: boolean;
  site?: string;
  keyDir?: string;
}

/** Where no `control` lets this command reach a site, the user applies it there. */
function notReached(sites: readonly string[], file: string): string {
  return sites
    .map(
      (s) =>
        `site ${s} has no control endpoint: apply it there (${commandLine({ verb: "apply", args: [file, "--site", s] }, {})})\n`,
    )
    .join("");
}

export function registerApply(program: Command): void {
  targetOptions(
    outputOptions(program.command("apply"))
      .description("make the live state match the policy; roll back if any step fails")
      .argument("[policy]", "policy file (YAML)")
      .option("--site <name>", "site this machine (or namespace) is")
      .option(
        "--in-force",
        "apply the policy in force here (what the last apply or push recorded) instead of a file",
      )
      .option(
        "--key-dir <dir>",
        "directory holding the private key files (default: the policy's; /etc/netpol with --in-force)",
      )
      .option(
        "--confirm <seconds>",
        "revert by itself unless `netpol confirm` runs within this time",
      )
      .option(
        "--all",
        "first apply the other sites that declare `control` through their `netpol serve`, then this one",
      )
      .option(
        "--replace-site",
        "this namespace becomes --site although its record says it runs another site (a rename)",
      )
      .option(
        "--leave-fleet",
        "take this site out of its fleet: apply although a fleet agent ran it (stop the agent first)",
      ),
  ).action(async (file: string | undefined, opts: ApplyOptions) => {
    const seconds = opts.confirm === undefined ? undefined : parseConfirmSeconds(opts.confirm);
    const here = targetFrom(opts);
    // Read when the apply asks: it reads the live state while the policy is validated.
    const chosen = choosePolicy(file, opts, here);
    if (opts.all && (opts.inForce || file === undefined || opts.site === undefined))
      throw new NetpolError("NETPOL_E_USAGE", "--all needs the policy file and --site");
    // A site a fleet agent runs changes through `netpol publish`; --in-force puts its policy back.
    const leaving = opts.inForce
      ? undefined
      : await guardFleetSite(
          here,
          { verb: "apply", args: [file ?? "", ...(opts.site ? ["--site", opts.site] : [])] },
          opts.leaveFleet === true,
        );
    // --all reads the other sites from the policy, so it is read in full; alone, a policy
    // already in force comes from the cache of what its last apply compiled.
    const full = opts.all && file ? await readPolicyFile(file, opts.keyDir) : undefined;
    const site = opts.site ?? "";
    const others = full ? otherSites(full.intent, site, full.keyDir) : undefined;
    const remote =
      full && others ? await applyRemote(here.runner, others.remote, full.text, seconds, site) : [];
    const { target, done } = showingProgress(here, opts);
    const policy = full ? { ...full, site } : chosen;
    const result = await guardedChange("the apply", (stop) =>
      applySite(target, policy, whoAmI("cli"), {
        replaceSite: opts.replaceSite === true,
        stop,
        ...(seconds === undefined
          ? {}
          : { confirm: { seconds, startTimer: (id) => startRevertTimer(opts, id, seconds) } }),
      }),
    ).finally(done);
    await leaving?.();
    const pending = result.pending;
    const confirm = commandLine(
      { verb: "confirm", args: opts.all ? [file ?? "", "--site", site, "--all"] : [] },
      target.files.naming,
    );
    report(
      opts,
      () =>
        remote
          .map(
            (r) =>
              formatPlanJson(r.plan, "remote") +
              (r.changed ? `applied and verified at site ${r.site}\n` : ""),
          )
          .join("") +
        notReached(others?.unreachable ?? [], file ?? "") +
        result.notes.map((n) => `note: ${n}\n`).join("") +
        formatPlan(result.plan, target.files.scope) +
        (result.changed ? `applied and verified (${target.runner.spawned} commands run)\n` : "") +
        (pending
          ? `run \`${confirm}\` before ${pending.deadline} (${seconds}s), or this apply is reverted\n`
          : ""),
      () => ({
        plan: planJson(result.plan),
        changed: result.changed,
        commandsRun: target.runner.spawned,
        policyHash: result.record.policyHash,
        notes: result.notes,
        ...(pending
          ? {
              confirmWithinSeconds: seconds,
              confirmDeadline: pending.deadline,
              confirmCommand: confirm,
            }
          : {}),
        ...(opts.all ? { remote, notReached: others?.unreachable ?? [] } : {}),
      }),
    );
  });

  targetOptions(
    outputOptions(program.command("confirm").description("keep an apply made with --confirm"))
      .argument("[policy]", "with --all: the policy applied with `apply --all`")
      .option("--all", "also confirm at the other sites the policy reaches through `control`")
      .option("--site <name>", "with --all: the site this machine is")
      .option("--key-dir <dir>", "directory holding the token files (default: the policy's)"),
  ).action(async (file: string | undefined, opts: ConfirmOptions) => {
    const target = targetFrom(opts);
    if (!opts.all) {
      await guardedChange("confirm", () => confirmApply(target));
      report(
        opts,
        () => "confirmed\n",
        () => ({ confirmed: true }),
      );
      return;
    }
    if (file === undefined || opts.site === undefined)
      throw new NetpolError("NETPOL_E_USAGE", "confirm --all needs the policy and --site");
    const policy = await readPolicyFile(file, opts.keyDir);
    const sites = await confirmRemote(
      target.runner,
      otherSites(policy.intent, opts.site, policy.keyDir).remote,
    );
    const here = await confirmApply(target).then(
      () => true,
      (err: unknown) => {
        if (err instanceof NetpolError && err.code === "NETPOL_E_NO_CONFIRM_PENDING") return false;
        throw err;
      },
    );
    sites.push({ site: opts.site, confirmed: here });
    if (!sites.some((s) => s.confirmed))
      throw new NetpolError(
        "NETPOL_E_NO_CONFIRM_PENDING",
        `no apply is waiting for confirmation at any site (${sites.map((s) => s.site).join(", ")})`,
      );
    report(
      opts,
      () =>
        sites
          .map((s) =>
            s.confirmed
              ? `confirmed at site ${s.site}\n`
              : `nothing was waiting for confirmation at site ${s.site}\n`,
          )
          .join(""),
      () => ({ confirmed: true, sites }),
    );
  });

  targetOptions(
    outputOptions(program.command("revert").description("undo an apply made with --confirm now")),
  ).action(async (opts: TargetOptions & OutputOptions) => {
    await guardedChange("the revert", () => revertNow(targetFrom(opts)));
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
