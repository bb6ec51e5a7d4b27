/**
 * The ACME defaults the schema fills in, in a module of their own: the compiler names them too,
 * and importing them from schema.ts would build every zod schema of the policy in a process that
 * never validates one (the fleet agent applying from its compiled cache).
 */

/** Let's Encrypt's production directory: where `tls: auto` certificates come from unless told. */
export const LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory";
/** In the log directory Debian's caddy package makes for the caddy user. */
export const DEFAULT_ACME_LOG = "/var/log/caddy/netpol-acme.log";
