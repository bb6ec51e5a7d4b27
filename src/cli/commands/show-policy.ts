import type { Command } from "commander";
import { loadRecord, recordPath } from "../../apply/state/record.js";
import { NetpolError } from "../../errors.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { type TargetOptions, targetFrom, targetOptions } from "../target.js";

export function registerShowPolicy(program: Command): void {
  targetOptions(
    outputOptions(program.command("show-policy")).description(
      "print the policy in force here, as the last apply or push recorded it (`> policy.yaml` to edit it)",
    ),
  ).action(async (opts: TargetOptions & OutputOptions) => {
    const target = targetFrom(opts);
    const record = await loadRecord(target.files);
    if (!record)
      throw new NetpolError(
        "NETPOL_E_NO_POLICY",
        `no policy is in force on ${target.files.scope} (no ${recordPath(target.files)})`,
      );
    report(
      opts,
      () => record.policyText,
      () => ({
        site: record.site,
        hash: record.policyHash,
        appliedAt: record.appliedAt,
        appliedBy: record.appliedBy,
        text: record.policyText,
      }),
    );
  });
}
