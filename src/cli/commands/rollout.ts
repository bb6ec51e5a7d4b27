import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import type { Etcd } from "../../fleet/etcd/client.js";
import { formatPublished, formatRollout } from "../../fleet/format.js";
import { policyKey } from "../../fleet/keys.js";
import { unpack } from "../../fleet/packed.js";
import { preparePolicy } from "../../fleet/prepare.js";
import { publish } from "../../fleet/publish.js";
import type { RolloutView } from "../../fleet/rollout.js";
import { readFleet, rolloutOf } from "../../fleet/view.js";
import { type EtcdOptions, etcdFrom, etcdOptions } from "../etcd-options.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { whoAmI } from "../target.js";
import { revisionNumber } from "./publish.js";

interface StatusOptions extends EtcdOptions, OutputOptions {
  wait?: string;
}

interface RollbackOptions extends EtcdOptions, OutputOptions {
  to: string;
}

async function withEtcd<T>(opts: EtcdOptions, fn: (etcd: Etcd) => Promise<T>): Promise<T> {
  const etcd = await etcdFrom(opts);
  try {
    return await fn(etcd);
  } finally {
    etcd.close();
  }
}

/** The rollout, read again every second until it completes or stops, or `seconds` pass. */
async function follow(etcd: Etcd, seconds: number): Promise<RolloutView> {
  const giveUp = Date.now() + seconds * 1000;
  for (;;) {
    const view = rolloutOf(await readFleet(etcd));
    if (view.progress.kind !== "running" || Date.now() >= giveUp) return view;
    await sleep(1_000);
  }
}

export function registerRollout(program: Command): void {
  const rollout = program.command("rollout").description("the fleet's rollouts (etcd)");
  etcdOptions(
    outputOptions(rollout.command("status"))
      .description("each site's revision and state in the rollout of the revision in force")
      .option("--wait <seconds>", "wait this long for the rollout to complete or stop"),
  ).action((opts: StatusOptions) =>
    withEtcd(opts, async (etcd) => {
      const view = await follow(
        etcd,
        opts.wait === undefined ? 0 : revisionNumber(opts.wait, "--wait"),
      );
      report(
        opts,
        () => formatRollout(view),
        () => view,
      );
      // Scripts can tell: 0 complete, 2 still running, 1 stopped.
      if (view.progress.kind === "halted") process.exitCode = 1;
      else if (view.progress.kind === "running") process.exitCode = 2;
    }),
  );
}

/** A published policy as etcd holds it (packed when large), as text. */
function policyText(value: string, revision: number): string {
  try {
    return unpack(value);
  } catch {
    throw new NetpolError(
      "NETPOL_E_ETCD_FAILED",
      `revision ${revision}'s policy in etcd is damaged (its compressed text does not unpack); roll back to another revision`,
    );
  }
}

export function registerRollback(program: Command): void {
  etcdOptions(
    outputOptions(program.command("rollback"))
      .description(
        "publish an earlier revision's policy again, as a new revision rolled out like any other",
      )
      .requiredOption(
        "--to <revision>",
        "the revision to go back to (netpol rollout status shows the current one)",
      ),
  ).action((opts: RollbackOptions) =>
    withEtcd(opts, async (etcd) => {
      const to = revisionNumber(opts.to, "--to");
      const { kv } = await etcd.get(policyKey(to));
      if (!kv)
        throw new NetpolError(
          "NETPOL_E_NO_REVISION",
          `etcd holds no revision ${to} (it keeps the last 50 published); \`netpol rollout status\` shows the current one`,
        );
      const prepared = preparePolicy(policyText(kv.value, to), `revision ${to}`);
      const published = await publish(etcd, prepared, { by: whoAmI("rollback"), rollbackOf: to });
      report(
        opts,
        () => formatPublished(published, prepared.whole),
        () => ({ ...published, rollbackOf: to }),
      );
    }),
  );
}
