import { ERRORS, type ErrorCode, NetpolError } from "../errors.js";
import { readTokenFile } from "../server/token.js";

/**
 * One request to another site's `netpol serve`, with its token. Its errors come back as the
 * same NetpolError (code, exit code) the remote raised, prefixed with where they came from.
 */
export async function callRemote<T>(
  url: string,
  tokenFile: string | undefined,
  route: string,
  init: { method?: string; body?: string; contentType?: string } = {},
): Promise<T> {
  if (!tokenFile) throw new NetpolError("NETPOL_E_USAGE", "--remote needs --token-file");
  const token = await readTokenFile(tokenFile);
  const response = await fetch(new URL(route, url), {
    method: init.method ?? "GET",
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.contentType ? { "content-type": init.contentType } : {}),
    },
    ...(init.body !== undefined ? { body: init.body } : {}),
    signal: AbortSignal.timeout(60_000),
  }).catch((err: Error) => {
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `cannot reach ${url}: ${String((err.cause as Error | undefined)?.message ?? err.message)}; is \`netpol serve\` running there, and the tunnel up (\`netpol status\`)?`,
    );
  });
  const body = (await response.json().catch(() => ({}))) as
    | T
    | { error?: { code?: string; message?: string } };
  const error = (body as { error?: { code?: string; message?: string } }).error;
  if (!response.ok || error) {
    const code = error?.code && error.code in ERRORS ? (error.code as ErrorCode) : "NETPOL_E_USAGE";
    const message = error?.message ?? response.statusText;
    throw new NetpolError(code, `${url} answered ${response.status}: ${message}`);
  }
  return body as T;
}
