import { DEFAULT_PROXY } from "../compile/proxy.js";
import { describeChange, type PlanJson } from "../plan/format.js";
import { proxyPlan } from "../plan/proxy.js";
import { readCaddy } from "../system/caddy/admin.js";
import type { Runner } from "../system/runner.js";

/**
 * netpol's routes (`@id: netpol-…`) in the Caddy at `admin` that nothing in force explains, as
 * drift: what a write Caddy answered too late for leaves (the apply's journal names the admin
 * address; the policy in force may have none, or another). Each is a route to remove. A Caddy
 * that does not answer is said as waiting: its state is unknown, not in sync.
 */
export async function strayProxyRoutes(
  runner: Runner,
  admin: string,
): Promise<Pick<PlanJson, "changes" | "waiting" | "warnings">> {
  const live = await readCaddy(runner, admin);
  if (!live.reachable)
    return {
      changes: [],
      waiting: [
        `Caddy's admin API at ${admin} does not answer (${live.error}): the proxy's state is unknown`,
      ],
      warnings: [],
    };
  const { changes } = proxyPlan(
    { settings: { ...DEFAULT_PROXY, adminListen: admin }, routes: [] },
    live,
  );
  const stray = changes.filter((c) => c.kind === "proxy");
  return {
    changes: stray.map((c) => ({ op: c.op, kind: c.kind, what: describeChange(c, 0) })),
    waiting: [],
    warnings:
      stray.length > 0
        ? [
            `Caddy at ${admin} holds ${stray.length} route(s) tagged as netpol's that no record explains (a write Caddy answered too late?); \`netpol apply\` settles them`,
          ]
        : [],
  };
}
