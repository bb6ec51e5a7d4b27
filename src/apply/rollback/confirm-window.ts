import { NetpolError } from "../../errors.js";

/**
 * The longest `--confirm` window: a day. A revert is a safety net for the session that made
 * the change, not a schedule; and Node's timers hold at most 2^31-1 ms (24.8 days), beyond
 * which a sleep fires at once.
 */
export const MAX_CONFIRM_SECONDS = 86_400;

/**
 * `--confirm SECONDS` (CLI) and `?confirm=SECONDS` (HTTP), read the same way: whole decimal
 * seconds from 1 to a day. `Number()` would take `0x10`, `1e3` and ` 5 `, and `1e99` would
 * pass as an integer and overflow the deadline.
 */
export function parseConfirmSeconds(text: string, where = "--confirm"): number {
  const seconds = /^[0-9]{1,6}$/.test(text) ? Number(text) : Number.NaN;
  if (seconds >= 1 && seconds <= MAX_CONFIRM_SECONDS) return seconds;
  throw new NetpolError(
    "NETPOL_E_USAGE",
    `${where} takes a whole number of seconds from 1 to ${MAX_CONFIRM_SECONDS} (a day), written in decimal digits, not ${JSON.stringify(text)}`,
  );
}
