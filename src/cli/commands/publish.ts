import type { Command } from "commander";
import { readPolicyText } from "../../apply/source/file.js";
import { NetpolError } from "../../errors.js";
import { dryRun, formatDryRun } from "../../fleet/dry-run.js";
import { formatPublished } from "../../fleet/format.js";
import { MAX_FLEET_POLICY_BYTES, preparePolicy } from "../../fleet/prepare.js";
import { publish } from "../../fleet/publish.js";
import { type EtcdOptions, etcdFrom, etcdOptions } from "../etcd-options.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { whoAmI } from "../target.js";

interface PublishOptions extends EtcdOptions, OutputOptions {
  dryRun?: boolean;
  expect?: string;
}

export const revisionNumber = (text: string, flag: string): number => {
  const n = Number(text);
  if (!(Number.isInteger(n) && n >= 0))
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `${flag} takes a revision number (netpol rollout status shows them), not ${text}`,
    );
  return n;
};

export function registerPublish(program: Command): void {
  etcdOptions(
    outputOptions(program.command("publish"))
      .description(
        "validate a policy and publish it to etcd as one revision; each site's agent applies its part, wave by wave",
      )
      .argument("<policy>", "policy file (YAML)")
      .option(
        "--dry-run",
        "show each site's plan, from the agents' latest reports; publish nothing",
      )
      .option(
        "--expect <revision>",
        "refuse unless etcd still holds this revision (the one you reviewed)",
      ),
  ).action(async (file: string, opts: PublishOptions) => {
    // Validated before etcd is asked anything: a bad policy is refused with its lines.
    const prepared = preparePolicy(await readPolicyText(file, MAX_FLEET_POLICY_BYTES), file);
    const etcd = await etcdFrom(opts);
    try {
      if (opts.dryRun) {
        const { serial, plans } = await dryRun(etcd, prepared);
        report(
          opts,
          () => formatDryRun(serial, plans),
          () => ({ basedOn: serial, plans }),
        );
        if (plans.some((p) => p.changes.length > 0)) process.exitCode = 2;
        return;
      }
      const published = await publish(etcd, prepared, {
        by: whoAmI("publish"),
        ...(opts.expect !== undefined ? { expect: revisionNumber(opts.expect, "--expect") } : {}),
      });
      report(
        opts,
        () => formatPublished(published, prepared.whole),
        () => ({ ...published, hash: prepared.hash, wholePolicy: prepared.whole }),
      );
    } finally {
      etcd.close();
    }
  });
}
