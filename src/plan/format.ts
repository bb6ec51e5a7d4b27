import { addressArgs, routeArgs, ruleArgs } from "../render/ip.js";
import type { Change, Plan } from "./types.js";

const SIGN = { add: "+", remove: "-", set: "~", replace: "~", sync: "~" } as const;

export function describeChange(c: Change, protocol: number): string {
  switch (c.kind) {
    case "link":
      if (c.op === "add") return `link ${c.link.name} (${c.link.kind})`;
      if (c.op === "set") return `link ${c.name} up${c.mtu ? `, mtu ${c.mtu}` : ""}`;
      return `link ${c.name}`;
    case "port":
      return `link ${c.port.device} into bridge ${c.port.master}`;
    case "sysctl":
      return `sysctl ${c.key} ${c.from ?? "(unset)"} → ${c.to}`;
    case "address":
      return addressArgs("add", c.address).slice(2).join(" ");
    case "route":
      return routeArgs("add", c.route, protocol).slice(2).join(" ");
    case "rule":
      return `${c.rule.family === 6 ? "-6 " : ""}${ruleArgs("add", c.rule, protocol).slice(2).join(" ")}`;
    case "nft":
      return `nftables table inet netpol (${c.reason})`;
    case "wireguard":
      return `wireguard ${c.spec.name}: ${c.reasons.join("; ")}`;
    case "proxy":
      return `proxy route netpol-${c.service}: ${c.detail}`;
    case "relay":
      return `PROXY-protocol relay (haproxy): ${c.detail}`;
    case "certificates":
      return `proxy TLS policy netpol:acme: ${c.detail}`;
  }
}

export function formatPlan(plan: Plan, scope: string): string {
  return formatPlanJson(planJson(plan), scope);
}

/** A plan as a person reads it, from its JSON form: the same for a plan made at another site. */
export function formatPlanJson(plan: PlanJson, scope: string): string {
  const lines = [`plan for site ${plan.site} (${scope}):`];
  for (const c of plan.changes) {
    lines.push(`  ${changeLine(c)}`);
    // A plan from another site's older netpol has none.
    for (const d of c.details ?? []) lines.push(`      ${d}`);
  }
  for (const w of plan.waiting) lines.push(`  … waiting: ${w}`);
  for (const c of plan.conflicts) lines.push(`  ! conflict: ${c}`);
  // A plan from another site's older netpol has none.
  for (const w of plan.warnings ?? []) lines.push(`  ! warning: ${w}`);
  const count = (op: string) => plan.changes.filter((c) => c.op === op).length;
  const changed = count("set") + count("replace") + count("sync");
  lines.push(
    plan.changes.length === 0
      ? "  in sync: nothing to do"
      : `  ${count("add")} to add, ${changed} to change, ${count("remove")} to remove`,
  );
  return `${lines.join("\n")}\n`;
}

export type PlanJson = ReturnType<typeof planJson>;

/** One change as a plan lists it: `+ route …`, `~ nftables …`, `- link …`. */
export function changeLine(c: PlanJson["changes"][number]): string {
  const kind = c.kind === "address" || c.kind === "route" || c.kind === "rule" ? `${c.kind} ` : "";
  return `${SIGN[c.op]} ${kind}${c.what}`;
}

/** The JSON form of a plan: stable and free of bigints and keys. */
export function planJson(plan: Plan) {
  return {
    site: plan.site,
    inSync: plan.changes.length === 0,
    changes: plan.changes.map((c) => ({
      op: c.op,
      kind: c.kind,
      what: describeChange(c, plan.protocol),
      // nftables: which set elements and rules the replace adds and takes out.
      ...(c.kind === "nft" && c.details ? { details: c.details } : {}),
    })),
    waiting: plan.waiting,
    conflicts: plan.conflicts,
    warnings: plan.warnings,
  };
}
