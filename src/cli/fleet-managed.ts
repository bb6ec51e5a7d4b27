import { readText, removeState } from "../apply/state/files.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";
import { contactPath } from "../fleet/agent/contact.js";
import { loadLocal, localPath } from "../fleet/agent/local.js";
import { commandLine } from "../next-command.js";
import { holdResidency } from "../resident/residency.js";

/** How the change was asked for, to repeat it with `--leave-fleet` in the message. */
export interface ChangeByHand {
  readonly verb: "apply" | "down";
  readonly args: readonly string[];
}

/**
 * A site whose fleet agent has taken up a revision from etcd (the agent remembers it in
 * `<scope>.fleet.json`) is the agent's: a change by hand would be undone at its next revision,
 * and the fleet's view (rollouts, `status --fleet`) would not know of it. So `apply` and `down`
 * refuse there before anything is read or changed, unless `leave` takes the site out of the
 * fleet: then it is refused while the agent (or any resident process) runs, and once the change
 * is made the agent's files go, so the site no longer says it follows a fleet. `apply
 * --in-force` (the boot unit's: the fleet's own policy put back) and `plan` change nothing of the
 * agent's: they do not ask.
 *
 * Resolves with what to call once the change is made; undefined where no fleet agent took the
 * site up.
 */
export async function guardFleetSite(
  target: Target,
  change: ChangeByHand,
  leave: boolean,
): Promise<(() => Promise<void>) | undefined> {
  const file = localPath(target.files);
  if ((await readText(file).catch(() => "")) === undefined) return undefined;
  if (!leave) throw await fleetManaged(target, change, file);
  // Taken and let go: NETPOL_E_RESIDENT_RUNNING, naming the agent, while it runs.
  await (await holdResidency(target, change.verb))();
  return async () => {
    await removeState(file);
    await removeState(contactPath(target.files));
  };
}

async function fleetManaged(target: Target, change: ChangeByHand, file: string) {
  // An unreadable file is the agent's all the same: what it says is only for the message.
  const local = await loadLocal(target.files).catch(() => undefined);
  const took = local
    ? `it took up revision ${local.serial} from etcd ${local.endpoints.join(",")}`
    : "it took up a revision from etcd";
  const publish = local
    ? `netpol publish POLICY --etcd ${local.endpoints.join(",")}`
    : "netpol publish POLICY";
  const again = commandLine(
    { verb: change.verb, args: [...change.args, "--leave-fleet"] },
    target.files.naming,
  );
  return new NetpolError(
    "NETPOL_E_FLEET_MANAGED",
    `nothing ${change.verb === "apply" ? "applied" : "removed"}: ${target.files.scope} is run by a fleet agent (${took}; ${file}), which would undo a change made here at its next revision, without the fleet knowing. Publish the policy instead (\`${publish}\`), or take the site out of the fleet: stop its agent (\`systemctl disable --now netpol-agent\`), then \`${again}\``,
  );
}
