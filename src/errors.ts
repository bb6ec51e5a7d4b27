import type { NextCommand } from "./next-command.js";
import type { LocatedDiagnostic } from "./policy/diagnostic.js";

/**
 * Every error netpol reports on purpose: a stable code, the CLI exit code and the HTTP status.
 * Anything else that escapes is a bug and is reported as one.
 */
export const ERRORS = {
  NETPOL_E_POLICY_INVALID: {
    exit: 1,
    http: 422,
    summary: "the policy has problems; each is listed with its place",
  },
  NETPOL_E_POLICY_UNREADABLE: { exit: 1, http: 400, summary: "the policy file cannot be read" },
  NETPOL_E_UNKNOWN_SITE: { exit: 1, http: 400, summary: "the site named is not in the policy" },
  NETPOL_E_KEY_FILE: {
    exit: 1,
    http: 422,
    summary: "a private key file is missing, malformed or readable by others",
  },
  NETPOL_E_PROVIDER_CONF: {
    exit: 1,
    http: 422,
    summary: "a provider's WireGuard file cannot be imported; the error names its line",
  },
  NETPOL_E_USAGE: { exit: 1, http: 400, summary: "the command line or request is malformed" },
  NETPOL_E_TOOL_FAILED: { exit: 1, http: 500, summary: "a system tool failed" },
  NETPOL_E_TOOL_MISSING: { exit: 1, http: 500, summary: "a system tool is not installed" },
  NETPOL_E_APPLY_FAILED: {
    exit: 1,
    http: 500,
    summary: "an apply step failed; the previous state was restored",
  },
  NETPOL_E_ROLLBACK_FAILED: {
    exit: 1,
    http: 500,
    summary: "an apply step failed and the previous state could not be fully restored",
  },
  NETPOL_E_INTERRUPTED: {
    exit: 1,
    http: 500,
    summary:
      "SIGINT or SIGTERM stopped the apply at a safe point; it rolled back (or had changed nothing)",
  },
  NETPOL_E_LOCKED: { exit: 1, http: 409, summary: "another apply is running on this namespace" },
  NETPOL_E_FLEET_MANAGED: {
    exit: 1,
    http: 409,
    summary: "this site's policy comes from a fleet in etcd: publish it there",
  },
  NETPOL_E_RESIDENT_RUNNING: {
    exit: 1,
    http: 409,
    summary: "the site's resident process (watch, serve or agent) is already running; one per site",
  },
  NETPOL_E_FOREIGN_STATE: {
    exit: 1,
    http: 409,
    summary: "an id the policy uses is already taken by state netpol does not own",
  },
  NETPOL_E_WRONG_SITE: {
    exit: 1,
    http: 409,
    summary:
      "this namespace runs another site (its record says which); nothing applied. A rename: --replace-site",
  },
  NETPOL_E_VERIFY_FAILED: {
    exit: 1,
    http: 500,
    summary: "after apply, the live state still differs from the policy",
  },
  NETPOL_E_REMOTE_FAILED: {
    exit: 1,
    http: 502,
    summary:
      "another site's `netpol serve` failed or could not be reached; this site was not applied",
  },
  NETPOL_E_UNAUTHORIZED: { exit: 1, http: 401, summary: "missing or wrong token" },
  NETPOL_E_FORBIDDEN: {
    exit: 1,
    http: 403,
    summary:
      "the read-only token cannot change anything, or the page's request came from another site or without its CSRF token",
  },
  NETPOL_E_NOT_FOUND: { exit: 1, http: 404, summary: "no such route" },
  NETPOL_E_PAYLOAD: {
    exit: 1,
    http: 400,
    summary: "the request body is malformed, too large or of the wrong type",
  },
  NETPOL_E_RATE_LIMITED: { exit: 1, http: 429, summary: "too many applies; wait and retry" },
  NETPOL_E_NO_POLICY: {
    exit: 1,
    http: 404,
    summary: "no policy has been applied here yet",
  },
  NETPOL_E_NO_CONFIRM_PENDING: {
    exit: 1,
    http: 409,
    summary: "there is no apply waiting for confirmation",
  },
  NETPOL_E_CONFIRM_PENDING: {
    exit: 1,
    http: 409,
    summary: "an apply made with --confirm awaits confirmation; confirm or revert it first",
  },
  NETPOL_E_CONFIRM_EXPIRED: {
    exit: 1,
    http: 409,
    summary: "the confirmation deadline passed; the apply is being reverted",
  },
  NETPOL_E_STATE_CORRUPT: {
    exit: 1,
    http: 503,
    summary:
      "a state file (record, journal, pending revert, lock) is unreadable; run `netpol recover`",
  },
  NETPOL_E_STATE_WRITE: {
    exit: 1,
    http: 507,
    summary:
      "a state file cannot be written (the filesystem is full or read-only); nothing was left half-written",
  },
  NETPOL_E_ETCD_UNREACHABLE: {
    exit: 1,
    http: 503,
    summary: "no etcd member answered (the fleet's control plane); the sites keep their state",
  },
  NETPOL_E_ETCD_DENIED: {
    exit: 1,
    http: 403,
    summary: "etcd refused these credentials, or their role may not read or write that key",
  },
  NETPOL_E_ETCD_FAILED: { exit: 1, http: 502, summary: "etcd answered the request with an error" },
  NETPOL_E_PUBLISH_CONFLICT: {
    exit: 1,
    http: 409,
    summary: "another revision was published since the one this publish was based on",
  },
  NETPOL_E_NO_REVISION: {
    exit: 1,
    http: 404,
    summary: "etcd holds no published policy of that revision (none yet, or pruned)",
  },
  NETPOL_E_FLEET_PART: {
    exit: 1,
    http: 502,
    summary:
      "the part etcd holds for this site is not one its publisher made (hash, shape or content); nothing applied",
  },
  NETPOL_E_INTERNAL: { exit: 70, http: 500, summary: "a bug in netpol; please report it" },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** What a failed system command leaves for the caller, beside the message. */
export interface ErrorDetails {
  readonly step?: string;
  readonly command?: string;
  readonly netns?: string;
  readonly exitCode?: number;
  readonly stderr?: string;
  /** The command that gets out of this state (for corrupt state files). */
  readonly recovery?: string;
  /** The code another site's `netpol serve` answered with (NETPOL_E_REMOTE_FAILED). */
  readonly remoteCode?: string;
  /** The netpol command to run next, structured; the CLI prints it with the options given. */
  readonly next?: NextCommand;
}

export class NetpolError extends Error {
  override readonly name = "NetpolError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly diagnostics: readonly LocatedDiagnostic[] = [],
    options?: { cause?: unknown; details?: ErrorDetails },
  ) {
    super(message, options);
    this.details = options?.details ?? {};
  }

  readonly details: ErrorDetails;

  get exitCode(): number {
    return ERRORS[this.code].exit;
  }

  get httpStatus(): number {
    return ERRORS[this.code].http;
  }
}
