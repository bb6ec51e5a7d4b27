import type { SiteState } from "../../compile/desired.js";
import { NetpolError } from "../../errors.js";
import { readIp } from "../../system/iproute2/iproute2.js";
import { readRtProtos } from "../../system/rt-protos.js";
import type { Target } from "../target.js";

/** The one name netpol's own number may carry in rt_protos (a user may name it for `ip` output). */
const OWN_NAME = "netpol";

/**
 * Before planning: the protocol number must not be one this machine's rt_protos names for
 * something else (netpol deletes whatever carries its number), and a number changed since the
 * last apply must not strand the routes and rules stamped with the old one. Those are refused
 * with the commands that clear them; the next apply then recreates them with the new number.
 */
export async function checkProtocol(
  target: Target,
  desired: SiteState,
  previous: number | undefined,
): Promise<void> {
  const named = (await readRtProtos()).get(desired.protocol);
  if (named !== undefined && named !== OWN_NAME) {
    throw new NetpolError(
      "NETPOL_E_POLICY_INVALID",
      `settings.routeProtocol: protocol ${desired.protocol} is "${named}" in this machine's rt_protos: netpol would take that daemon's routes for its own; pick an unused number`,
    );
  }
  if (previous === undefined || previous === desired.protocol) return;
  const old = await readIp(target.runner, previous);
  const left = old.routes.owned.length + old.rules.owned.length;
  if (left === 0) return;
  const ns = target.runner.netns ? `ip netns exec ${target.runner.netns} ` : "";
  const flush = [4, 6].flatMap((f) => [
    `${ns}ip -${f} rule flush protocol ${previous}`,
    `${ns}ip -${f} route flush table all proto ${previous}`,
  ]);
  throw new NetpolError(
    "NETPOL_E_FOREIGN_STATE",
    `nothing applied: settings.routeProtocol changed from ${previous} to ${desired.protocol}, and ${left} routes and rules of the last apply still carry ${previous}. Remove them, then apply again (egress traffic stops, failing closed, until it is done):\n  ${flush.join("\n  ")}`,
  );
}
