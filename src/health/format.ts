import type { HealthEvent } from "./monitor.js";

/** A health event as a line of `watch`'s output. */
export function describeHealthEvent(e: HealthEvent): string {
  switch (e.event) {
    case "path":
      return `egress ${e.egress}: path ${e.path} is ${e.state}${e.reason ? ` (${e.reason})` : ""}`;
    case "switch":
      return `egress ${e.egress}: switched from ${e.from ?? "none"} to ${e.to ?? "none (fail-closed engaged)"} in ${e.tookMs} ms: ${e.reason}`;
    case "switch-failed":
      return `egress ${e.egress}: path switch failed: ${e.message}`;
    case "canary":
      return `egress ${e.egress}: leak canary ${e.state === "leak" ? "ALARM" : e.state}${e.seen ? `, the echo saw ${e.seen}` : ""}${e.reason ? ` (${e.reason})` : ""}`;
  }
}
