import type { NetpolError } from "../errors.js";

/**
 * The next command to run, for errors whose message does not already name one. Messages raised
 * deeper down (key files, token files, unknown sites) carry their own fix.
 */
export function fixFor(err: NetpolError): string | undefined {
  switch (err.code) {
    case "NETPOL_E_FOREIGN_STATE":
      return "each conflict says what to change; `netpol plan FILE --site SITE` lists them again once it is done";
    case "NETPOL_E_APPLY_FAILED":
    case "NETPOL_E_VERIFY_FAILED":
      return "see what still differs with `netpol plan FILE --site SITE`";
    case "NETPOL_E_ROLLBACK_FAILED":
      return "see what is left with `netpol status`; `netpol down` removes everything netpol owns";
    case "NETPOL_E_NO_POLICY":
      return "apply one first: `netpol apply FILE --site SITE`";
    default:
      return undefined;
  }
}
