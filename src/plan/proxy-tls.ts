import type { ProxySpec } from "../compile/desired.js";
import { ACME_LOG, acmeLog, TLS_POLICY_ID, tlsPolicy } from "../render/caddy.js";
import { canonical, child, dropEmpty, isObj, type Obj } from "./caddy-json.js";
import type { Change } from "./types.js";

const subjectsOf = (policy: unknown): string[] =>
  isObj(policy) && Array.isArray(policy.subjects)
    ? policy.subjects.map((s) => String(s).toLowerCase())
    : [];

function opFor(
  had: boolean,
  wanted: boolean,
  same: boolean,
): (Change["op"] & ("add" | "set" | "remove")) | undefined {
  if (!wanted) return had ? "remove" : undefined;
  if (!had) return "add";
  return same ? undefined : "set";
}

/**
 * netpol's TLS automation policy (`@id: netpol:acme`) and its certificate log, merged into the
 * running config `config` (a copy, changed in place). Everything else in `apps.tls` and
 * `logging` is the user's and stays as it was; netpol's policy goes first, where Caddy looks
 * for a name's policy first. Pure.
 */
export function mergeTls(
  config: Obj,
  desired: ProxySpec,
): { changes: Change[]; conflicts: string[] } {
  const apps = child(config, "apps");
  const tls = child(apps, "tls");
  const automation = child(tls, "automation");
  const policies = Array.isArray(automation.policies) ? automation.policies : [];
  const had = policies.find((p) => isObj(p) && p["@id"] === TLS_POLICY_ID);
  const theirs = policies.filter((p) => p !== had);
  const logging = child(config, "logging");
  const logs = child(logging, "logs");
  const hadLog = logs[ACME_LOG];
  delete logs[ACME_LOG];

  const wanted = tlsPolicy(desired);
  const wantedLog = acmeLog(desired);
  const conflicts: string[] = [];
  const names = new Set(subjectsOf(wanted));
  theirs.forEach((p, i) => {
    for (const name of subjectsOf(p).filter((s) => names.has(s)))
      conflicts.push(
        `Caddy's TLS automation policy ${i} already covers ${name}, a hostname netpol publishes; remove it there or publish another hostname`,
      );
  });
  const detail = wanted
    ? `certificates for ${subjectsOf(wanted).join(", ")} from ${desired.settings.acme.ca} (events to ${desired.settings.acme.log})`
    : "netpol's certificate policy and log";
  const same =
    had !== undefined &&
    canonical(had) === canonical(wanted) &&
    canonical(hadLog) === canonical(wantedLog);
  const op = opFor(had !== undefined, wanted !== undefined, same);
  const changes: Change[] = op ? [{ kind: "certificates", op, detail }] : [];

  automation.policies = wanted ? [wanted, ...theirs] : theirs;
  if (wantedLog) logs[ACME_LOG] = wantedLog;
  dropEmpty(automation, "policies");
  dropEmpty(tls, "automation");
  dropEmpty(apps, "tls");
  dropEmpty(logging, "logs");
  dropEmpty(config, "logging");
  return { changes, conflicts };
}
