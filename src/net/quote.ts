const SHOWN_CHARS = 64;

/**
 * A value from the policy, quoted for a message and cut short: a hostile policy can make any
 * string a megabyte long, and a message should still fit on a line.
 */
export function quoted(text: string): string {
  if (text.length <= SHOWN_CHARS) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, SHOWN_CHARS))}… (${text.length} characters)`;
}
