import type { LiveState, ProxyWrite } from "../plan/types.js";
import { writeCaddy } from "../system/caddy/admin.js";
import type { Runner } from "../system/runner.js";

/**
 * Puts Caddy's previous config back after a later failure (verify) made the apply fail. When
 * Caddy refused the write itself, it still runs the old config and there is nothing to undo.
 * Returns what could not be undone.
 */
export async function undoProxy(
  runner: Runner,
  write: ProxyWrite | undefined,
  now: LiveState,
): Promise<string[]> {
  if (!write || !now.proxy?.reachable || now.proxy.etag === write.etag) return [];
  return writeCaddy(
    runner,
    { admin: write.admin, etag: now.proxy.etag, config: write.previous },
    "rollback",
  ).then(
    () => [],
    (err: unknown) => [`Caddy config: ${err instanceof Error ? err.message : String(err)}`],
  );
}
