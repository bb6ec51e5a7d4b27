import { NetpolError } from "../errors.js";
import { readTokenFile } from "../server/token.js";

/** Another site's `netpol serve`: where it answers and the token it wants. */
export interface ControlEndpoint {
  readonly url: string;
  readonly tokenFile: string;
}

/**
 * One request to another site's `netpol serve`, JSON back. Any failure (unreachable, refused,
 * an apply that failed there) is one NetpolError naming the site and what it said.
 */
export async function callSite<T>(
  site: string,
  endpoint: ControlEndpoint,
  path: string,
  body?: string,
  /** An apply there may take a while (WireGuard, Caddy); a dead tunnel must not hang us. */
  timeoutMs = 60_000,
): Promise<T> {
  const token = await readTokenFile(endpoint.tokenFile);
  const url = new URL(path, endpoint.url);
  const failed = (why: string) =>
    new NetpolError("NETPOL_E_REMOTE_FAILED", `site ${site} (${endpoint.url}): ${why}`);
  const response = await fetch(url, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { "content-type": "application/yaml" } : {}),
    },
    ...(body !== undefined ? { body } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  }).catch((err: Error) => {
    throw failed(
      `cannot reach it: ${String((err.cause as Error | undefined)?.message ?? err.message)}`,
    );
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw failed(`answered ${response.status} with something that is not JSON`);
  }
  const error = (parsed as { error?: { code?: string; message?: string } }).error;
  if (!response.ok || error) {
    throw failed(
      `${error?.code ?? `HTTP ${response.status}`}: ${error?.message ?? response.statusText}`,
    );
  }
  return parsed as T;
}
