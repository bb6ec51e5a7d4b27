import { NetpolError } from "../../errors.js";
import type { CaddyLive, CaddyWrite } from "../../plan/live.js";
import { type HttpAnswer, httpRequest } from "../http-request.js";
import type { Runner } from "../runner.js";

/**
 * Caddy's admin API listens on the localhost of the namespace Caddy runs in, so each request is
 * made from that namespace (see httpRequest), which a request from this process could not do.
 * Node, not curl: Caddy 2.6 sends the config's ETag as an HTTP trailer, which node hands over
 * as such.
 */

/** `host:port` of the admin listener → the base URL; anything else is refused, never spliced into a URL. */
export function adminUrl(admin: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(admin))
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `proxy.adminListen ${JSON.stringify(admin)} is not host:port; netpol talks to Caddy's admin API over TCP (e.g. localhost:2019)`,
    );
  return `http://${admin}`;
}

/**
 * How long a request to the admin API may take before netpol gives up on its answer: 10 s, or
 * NETPOL_CADDY_TIMEOUT_MS (milliseconds; the tests of a slow Caddy shorten it).
 */
export function adminTimeoutMs(): number {
  const set = Number(process.env.NETPOL_CADDY_TIMEOUT_MS);
  return Number.isSafeInteger(set) && set > 0 ? set : 10_000;
}

/**
 * A write Caddy never answered. Giving up on the answer does not take the request back: Caddy
 * may still carry it out, seconds later. So nothing may be said about the proxy's state after
 * one until it is read again (the rollback does, and says "unknown" when it cannot settle it).
 */
export class UnansweredWrite extends NetpolError {
  constructor(
    readonly admin: string,
    message: string,
  ) {
    super("NETPOL_E_TOOL_FAILED", message);
  }
}

function request(
  runner: Runner,
  admin: string,
  method: "GET" | "POST",
  path: string,
  options: { body?: string; etag?: string; step?: string } = {},
): Promise<HttpAnswer> {
  return httpRequest(runner, {
    method,
    url: `${adminUrl(admin)}${path}`,
    headers: {
      ...(options.body ? { "Content-Type": "application/json" } : {}),
      ...(options.etag ? { "If-Match": options.etag } : {}),
    },
    ...(options.body ? { body: options.body } : {}),
    timeoutMs: adminTimeoutMs(),
    ...(options.step !== undefined ? { step: options.step } : {}),
  });
}

/** Caddy's own words from an error answer (`{"error": "..."}`), or the raw body. */
function caddyError({ body, error }: HttpAnswer): string {
  if (error !== undefined) return `no answer (${error})`;
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // Not JSON: say what came back.
  }
  return body.trim() || "(empty answer)";
}

/** An answer's JSON; undefined for one that is not (a body cut short by a wrong Content-Length). */
function parseJson(body: string): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(body) as unknown };
  } catch {
    return undefined;
  }
}

export async function readCaddy(runner: Runner, admin: string): Promise<CaddyLive> {
  const r = await request(runner, admin, "GET", "/config/");
  if (r.status !== 200 || r.etag === undefined)
    return { reachable: false, error: `GET /config/: ${caddyError(r)}` };
  const config = parseJson(r.body);
  if (config === undefined)
    return { reachable: false, error: "GET /config/: the answer is not JSON (cut short?)" };
  return { reachable: true, config: config.value, etag: r.etag };
}

/**
 * Replaces the whole config in one request. Caddy swaps configs atomically (the old one keeps
 * serving if the new one fails to start). POST /load would ignore If-Match, so the write goes to
 * /config/, where a config changed by someone else since `etag` is refused with 412.
 */
export async function writeCaddy(runner: Runner, write: CaddyWrite, step: string): Promise<void> {
  const r = await request(runner, write.admin, "POST", "/config/", {
    body: JSON.stringify(write.config),
    etag: write.etag,
    step,
  });
  if (r.status === 200) return;
  const said = caddyError(r);
  if (r.status === 0)
    throw new UnansweredWrite(
      write.admin,
      `Caddy's admin API at ${write.admin} did not answer the write during ${step}: ${said}; Caddy may still carry it out`,
    );
  throw new NetpolError(
    "NETPOL_E_TOOL_FAILED",
    r.status === 412
      ? `Caddy's config was changed by someone else while netpol planned (${said}); nothing was written, run again`
      : `Caddy refused the new config during ${step} (HTTP ${r.status}): ${said}`,
  );
}

/** One upstream as Caddy's reverse proxy sees it. */
export interface CaddyUpstream {
  readonly address: string;
  readonly fails: number;
  readonly requests: number;
}

/** GET /reverse_proxy/upstreams: the proxy's own view of its upstreams (failures it counted). */
export async function readUpstreams(
  runner: Runner,
  admin: string,
): Promise<readonly CaddyUpstream[] | undefined> {
  const r = await request(runner, admin, "GET", "/reverse_proxy/upstreams");
  const list = r.status === 200 ? parseJson(r.body)?.value : undefined;
  if (!Array.isArray(list)) return undefined;
  return (list as { address: string; fails?: number; num_requests?: number }[]).map((u) => ({
    address: u.address,
    fails: u.fails ?? 0,
    requests: u.num_requests ?? 0,
  }));
}
