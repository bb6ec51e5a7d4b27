import { NetpolError } from "../errors.js";

/** `--interval SECONDS` of the commands that host the resident, in ms: whole seconds, 0: never. */
export function intervalMs(text: string): number {
  const seconds = Number(text);
  if (!(Number.isInteger(seconds) && seconds >= 0))
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `--interval takes a whole number of seconds, not ${text}`,
    );
  return seconds * 1000;
}
