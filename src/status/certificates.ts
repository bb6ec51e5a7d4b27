import { formatAddress, parseAddress } from "../net/cidr.js";
import type { IssuanceError } from "../system/caddy/acme-log.js";
import type { Served } from "../system/caddy/served.js";

/** A published hostname's certificate, as its site's Caddy serves it and last tried to get it. */
export interface CertificateStatus {
  readonly hostname: string;
  readonly service: string;
  /** What a TLS handshake for the name got from Caddy; null when it got no certificate. */
  readonly served: {
    readonly issuer: string;
    readonly notBefore: string;
    readonly notAfter: string;
    readonly serial: string;
  } | null;
  /** Why the handshake got none (Caddy holds no certificate for the name yet), or null. */
  readonly servedError: string | null;
  /** The last issuance error Caddy logged for the name, unless a certificate came after it. */
  readonly lastIssuanceError: IssuanceError | null;
  /** Why the CA's challenge cannot succeed, read from that error, in words; null when unknown. */
  readonly reason: string | null;
}

const PROBLEM = "urn:ietf:params:acme:error:";

/**
 * The address the CA tried for the name: Go's dialer (`dial tcp 192.0.2.99:80: …`, Pebble) or
 * Let's Encrypt's detail, which starts with it (`… - 192.0.2.99: Fetching http://…`).
 */
function dialedAddress(message: string): string | undefined {
  const m =
    /dial tcp \[?([0-9A-Fa-f:.]+?)\]?:\d+/.exec(message) ??
    /(?:^|- )\[?([0-9A-Fa-f:.]{3,}?)\]?: /.exec(message);
  const text = m?.[1];
  return text !== undefined && parseAddress(text).ok ? text : undefined;
}

/**
 * Why a name's HTTP-01 challenge cannot succeed, from the CA's problem and the address it
 * tried: its DNS does not point at this site, or port 80 of the site does not answer, or
 * someone else answers there. `own` are the site's addresses. Undefined for other errors
 * (the message then speaks for itself).
 */
export function challengeReason(
  hostname: string,
  error: IssuanceError,
  own: readonly string[],
): string | undefined {
  const problem = error.problem?.startsWith(PROBLEM) ? error.problem.slice(PROBLEM.length) : "";
  const dialed = dialedAddress(error.message);
  const ours = dialed !== undefined && own.includes(dialed);
  const listed = own.length > 0 ? own.join(", ") : "none";
  if (problem === "dns")
    return `the CA finds no address for ${hostname} in DNS: give it an A or AAAA record pointing at this site (${listed})`;
  if (dialed !== undefined && !ours && (problem === "connection" || problem === "unauthorized"))
    return `${hostname} resolves to ${dialed}, which is not this site (${listed}): point its DNS at this site, or, behind 1:1 NAT, forward port 80 of ${dialed} here`;
  if (problem === "connection")
    return `the CA could not connect to port 80${dialed ? ` of ${dialed}` : ""}: open port 80 to this site's Caddy (firewall, security group, or a raw port published there)`;
  if (problem === "unauthorized" || problem === "incorrectResponse")
    return `the CA reached port 80${dialed ? ` of ${dialed}` : ""} but did not get Caddy's answer to the challenge: something else answers HTTP there`;
  if (problem === "rateLimited")
    return "the CA's rate limit for this name or account: Caddy retries later by itself";
  if (problem === "caa") return `a CAA record of ${hostname} does not allow this CA`;
  return undefined;
}

export function certificateStatus(
  hostname: string,
  service: string,
  served: Served,
  error: IssuanceError | undefined,
  own: readonly string[],
): CertificateStatus {
  const covers = !("error" in served) && served.names.includes(hostname);
  return {
    hostname,
    service,
    served:
      "error" in served
        ? null
        : {
            issuer: served.issuer,
            notBefore: served.notBefore,
            notAfter: served.notAfter,
            serial: served.serial,
          },
    servedError:
      "error" in served
        ? served.error
        : covers
          ? null
          : `the certificate served is for ${served.names.join(", ") || "no name"}, not ${hostname}`,
    lastIssuanceError: error ?? null,
    reason: error ? (challengeReason(hostname, error, own) ?? null) : null,
  };
}

/** The site's addresses as the CA would dial them. */
export function addressTexts(addresses: readonly { cidr: { family: 4 | 6; address: bigint } }[]) {
  return [...new Set(addresses.map((a) => formatAddress(a.cidr)))];
}
