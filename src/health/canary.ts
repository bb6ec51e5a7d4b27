import { formatAddress, parseAddress } from "../net/cidr.js";
import type { EgressCanary } from "../policy/intent.js";
import { httpRequest } from "../system/http-request.js";
import type { Runner } from "../system/runner.js";
import type { Active } from "./choose.js";

/**
 * The leak canary: an address-echo URL asked from the router as the egress's own traffic
 * (compile/nftables.ts gives the request the egress's mark; it leaves from the router's
 * address in the egress's network), and the address the echo saw judged against the ones the
 * active path should show. Any other address is a leak: the egress's traffic leaves somewhere
 * its policy does not say (a foreign `ip rule`, a route pushed into its table).
 */
export type CanaryState = "ok" | "leak" | "no answer";

export interface CanaryReport {
  readonly url: string;
  readonly state: CanaryState;
  /** The address the echo saw at the latest request; null when nothing answered. */
  readonly seen: string | null;
  /** What the active path should show; empty while the egress fails closed. */
  readonly expected: readonly string[];
  readonly checkedAt: string;
  /** Requests that saw an unexpected address since the monitor started (status: this one). */
  readonly alarms: number;
  readonly reason: string | null;
}

/** What one request came back with: the body (an answer), or why nothing did. */
export type CanaryAnswer = { readonly body: string } | { readonly error: string };

/** The address an echo answered: its text (icanhazip-style), or JSON's `ip` (ipify-style). */
export function readEcho(body: string): string | undefined {
  const text = body.trim();
  const plain = parseAddress(text);
  if (plain.ok) return formatAddress(plain.value);
  try {
    const ip: unknown = (JSON.parse(text) as { ip?: unknown }).ip;
    const parsed = typeof ip === "string" ? parseAddress(ip) : undefined;
    return parsed?.ok ? formatAddress(parsed.value) : undefined;
  } catch {
    return undefined;
  }
}

const expectedFor = (canary: EgressCanary, active: Active): string[] =>
  active === "none" ? [] : (canary.expect[active] ?? []).map(formatAddress);

/**
 * One request's verdict. `before` and `after` are the egress's path when the request left and
 * when its answer came: a switch in between makes either path's address right. With every
 * path down (fail closed) the request should find no route, so any answer is a leak. Pure.
 */
export function judgeCanary(
  canary: EgressCanary,
  answer: CanaryAnswer,
  before: Active,
  after: Active,
  alarmsBefore: number,
  now: number,
): CanaryReport {
  const expected = [...new Set([...expectedFor(canary, before), ...expectedFor(canary, after)])];
  const base = { url: canary.url, expected, checkedAt: new Date(now).toISOString() };
  if ("error" in answer)
    return {
      ...base,
      state: "no answer",
      seen: null,
      alarms: alarmsBefore,
      reason: answer.error,
    };
  const seen = readEcho(answer.body);
  if (seen === undefined)
    return {
      ...base,
      state: "no answer",
      seen: null,
      alarms: alarmsBefore,
      reason: `the echo's answer is not an address: ${JSON.stringify(answer.body.slice(0, 60))}`,
    };
  if (expected.includes(seen))
    return { ...base, state: "ok", seen, alarms: alarmsBefore, reason: null };
  return {
    ...base,
    state: "leak",
    seen,
    alarms: alarmsBefore + 1,
    reason:
      expected.length === 0
        ? `the egress fails closed, yet the echo saw ${seen}: its traffic leaves by another way`
        : `the echo saw ${seen}, not ${expected.join(" or ")}: the egress's traffic leaves by another way`,
  };
}

/** One canary request from the site's namespace; given up after a few seconds. */
export async function askCanary(runner: Runner, canary: EgressCanary): Promise<CanaryAnswer> {
  const answer = await httpRequest(runner, {
    method: "GET",
    url: canary.url,
    timeoutMs: Math.min(5, canary.interval) * 1000,
    localAddress: formatAddress(canary.source),
    step: "leak canary",
  }).catch((err: unknown) => ({
    status: 0,
    body: "",
    error: err instanceof Error ? err.message : String(err),
  }));
  if (answer.status === 0) return { error: answer.error ?? "no answer" };
  if (answer.status !== 200) return { error: `HTTP ${answer.status}` };
  return { body: answer.body };
}
