import type { SiteState } from "../compile/desired.js";
import { isObj } from "../plan/caddy-json.js";
import type { LiveState } from "../plan/types.js";
import type { ServiceIntent } from "../policy/intent.js";
import { ROUTE_ID_PREFIX } from "../render/caddy.js";
import { lastIssuanceErrors, readAcmeLog } from "../system/caddy/acme-log.js";
import { type HandshakeTarget, readServed } from "../system/caddy/served.js";
import type { Runner } from "../system/runner.js";
import { addressTexts, type CertificateStatus, certificateStatus } from "./certificates.js";

/**
 * Where the server holding a route listens, as a handshake from the site dials it: its first
 * listen address, with a wildcard host read as loopback ("tcp/[::]:443" → 127.0.0.1:443).
 */
function listenerOf(
  config: unknown,
  routeId: string,
  fallback: number,
): { host: string; port: number } {
  const servers =
    isObj(config) &&
    isObj(config.apps) &&
    isObj(config.apps.http) &&
    isObj(config.apps.http.servers)
      ? Object.values(config.apps.http.servers)
      : [];
  const server = servers.find(
    (s) =>
      isObj(s) && Array.isArray(s.routes) && s.routes.some((r) => isObj(r) && r["@id"] === routeId),
  );
  const listen =
    isObj(server) && Array.isArray(server.listen) ? String(server.listen[0] ?? "") : "";
  const m = /^(?:[a-z0-9]+\/)?\[?([^\]]*?)\]?:(\d+)(?:-\d+)?$/.exec(listen);
  if (!m) return { host: "127.0.0.1", port: fallback };
  const host = m[1] ?? "";
  return {
    host: host === "" || host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host,
    port: Number(m[2]),
  };
}

/**
 * Each hostname published with `tls: auto`: the certificate Caddy serves for it (one TLS
 * handshake per name, all from one process in the site's namespace) and the last issuance
 * error Caddy logged, with its reason named.
 */
export async function collectCertificates(
  runner: Runner,
  desired: SiteState,
  live: LiveState,
  published: readonly ServiceIntent[],
  /** The site's uplink: the CA reaches the site by its addresses. */
  wan: string | undefined,
): Promise<CertificateStatus[]> {
  const proxy = desired.proxy;
  if (proxy?.settings.tls !== "auto") return [];
  const names = published.flatMap((s) => (s.kind === "http" ? [s] : []));
  if (names.length === 0) return [];
  const config = live.proxy?.reachable ? live.proxy.config : undefined;
  const targets: HandshakeTarget[] = names.map((s) => ({
    ...listenerOf(config, `${ROUTE_ID_PREFIX}${s.name}`, proxy.settings.httpsPort),
    servername: s.hostname,
  }));
  const [served, log] = await Promise.all([
    readServed(runner, targets),
    readAcmeLog(proxy.settings.acme.log).catch(() => undefined),
  ]);
  const errors = lastIssuanceErrors(log ?? "");
  const own = addressTexts(live.addresses.filter((a) => wan === undefined || a.device === wan));
  return names.map((s, i) =>
    certificateStatus(
      s.hostname,
      s.name,
      served[i] ?? { error: "no answer" },
      errors.get(s.hostname),
      own,
    ),
  );
}
