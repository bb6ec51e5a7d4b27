/**
 * The build id the bundle carries (deploy/bundle-banner.mjs), for bench/fleet-worker.ts's agents,
 * which run from source: without one an agent keeps no compiled cache
 * (src/apply/state/compiled-cache.ts) and validates the policy in force again after each apply,
 * which no installed netpol does. Imported first, before that module reads it.
 */
(globalThis as { __NETPOL_BUILD__?: string }).__NETPOL_BUILD__ = "bench-fleet";
