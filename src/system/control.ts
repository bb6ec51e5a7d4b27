import { NetpolError } from "../errors.js";
import { readTokenFile } from "../server/token.js";
import { httpRequest } from "./http-request.js";
import type { Runner } from "./runner.js";

/** Another site's `netpol serve`: where it answers and the token it wants. */
export interface ControlEndpoint {
  readonly url: string;
  readonly tokenFile: string;
}

/** An apply there may take a while (WireGuard, Caddy); a dead tunnel must not hang us. */
const CONTROL_TIMEOUT_MS = 60_000;

/**
 * One request to another site's `netpol serve`, JSON back, sent from the runner's namespace
 * (the one `--netns` names): the tunnel to that site is there, and a request from anywhere
 * else could leave the machine by its default route. Any failure (unreachable, refused, an
 * apply that failed there) is one NetpolError naming the site, with its code and what it said.
 */
export async function callSite<T>(
  runner: Runner,
  site: string,
  endpoint: ControlEndpoint,
  path: string,
  body?: string,
  timeoutMs = CONTROL_TIMEOUT_MS,
): Promise<T> {
  const token = await readTokenFile(endpoint.tokenFile);
  const url = new URL(path, endpoint.url);
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `site ${site}: ${endpoint.url} is not an http:// or https:// URL`,
    );
  const failed = (why: string, remoteCode?: string) =>
    new NetpolError("NETPOL_E_REMOTE_FAILED", `site ${site} (${endpoint.url}): ${why}`, [], {
      details: remoteCode ? { remoteCode } : {},
    });
  const answer = await httpRequest(runner, {
    method: body === undefined ? "GET" : "POST",
    url: url.href,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/yaml" } : {}),
    },
    ...(body !== undefined ? { body } : {}),
    timeoutMs,
  });
  if (answer.status === 0) throw failed(`cannot reach it: ${answer.error ?? "no answer"}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    throw failed(`answered ${answer.status} with something that is not JSON`);
  }
  const error = (parsed as { error?: { code?: string; message?: string } }).error;
  if (answer.status >= 400 || error) {
    throw failed(
      `${error?.code ?? `HTTP ${answer.status}`}: ${error?.message ?? "(no message)"}`,
      error?.code,
    );
  }
  return parsed as T;
}
