import * as z from "zod";
import { unpack } from "./packed.js";

/**
 * The values the fleet keeps in etcd, as JSON. Read with these schemas at the edge: a value
 * written by another netpol, or by hand, that does not fit is reported, never half-used.
 */

const siteList = z.array(z.string());

export const headSchema = z.object({
  /** The revision: 1 for the first publish, one more for each. */
  serial: z.number().int().min(1),
  /** sha256 of the policy text. */
  hash: z.string(),
  publishedAt: z.string(),
  publishedBy: z.string(),
  sites: siteList,
  waves: z.array(siteList),
  failureBudget: z.number().int().min(0),
  healthSeconds: z.number().int().min(0),
  /** A publish of an earlier revision's text says which. */
  rollbackOf: z.number().int().optional(),
});
export type Head = z.infer<typeof headSchema>;

export const desiredSchema = z.object({
  serial: z.number().int().min(1),
  /** The site's wave (0 first) and the sites of the wave before it, which it waits for. */
  wave: z.number().int().min(0),
  after: siteList,
  failureBudget: z.number().int().min(0),
  healthSeconds: z.number().int().min(0),
  /** The policy as this site needs it: the whole policy, or the part its state depends on. */
  text: z.string(),
  /** sha256 of `text`: what the site's record holds once applied. */
  hash: z.string(),
  /**
   * The site's state, compiled from `text` by the publisher (the compiled cache's JSON): the
   * agent applies it without parsing `text` (agent/part.ts checks it). Absent from the parts
   * of a publisher before it; the agent then validates `text`.
   */
  state: z.unknown().optional(),
  /** The tunnel addresses of the site's peers, which the health check after an apply pings. */
  peers: z.array(z.string()).optional(),
});
export type Desired = z.infer<typeof desiredSchema>;

/** What became of a revision at a site. */
export const RESULTS = ["applied", "unchanged", "failed"] as const;
export type Result = (typeof RESULTS)[number];

export const ledgerSchema = z.object({
  serial: z.number().int().min(1),
  result: z.enum(RESULTS),
  /** Failures of the waves before this site's, when its wave started (the rollout's budget). */
  failuresBefore: z.number().int().min(0),
  hash: z.string(),
  at: z.string(),
  error: z.string().optional(),
});
export type Ledger = z.infer<typeof ledgerSchema>;

/** What a site's agent is doing now. */
export const STATES = ["starting", "waiting", "applying", "in force", "failed", "held"] as const;

export const liveSchema = z.object({
  serial: z.number().int().min(0),
  state: z.enum(STATES),
  /** Changes the last round found and put right (0: the kernel held the policy). */
  drift: z.number().int().min(0),
  /** Tunnel peers this site dials with a recent handshake, out of all it dials. */
  tunnels: z.object({ up: z.number().int(), of: z.number().int() }),
  at: z.string(),
  version: z.string(),
  message: z.string().optional(),
});
export type Live = z.infer<typeof liveSchema>;

/** A value (packed or not) parsed with `schema`, or undefined when it is not JSON of that shape. */
export function readValue<T>(schema: z.ZodType<T>, text: string | undefined): T | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(unpack(text)));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
