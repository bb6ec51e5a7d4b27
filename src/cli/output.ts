import { styleText } from "node:util";
import type { Command } from "commander";

export interface OutputOptions {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** --json and --quiet, the same on every command that reports something. */
export function outputOptions(command: Command): Command {
  return command
    .option("--json", "print one JSON document (errors too) for scripts")
    .option("-q, --quiet", "print nothing but errors; the exit code tells the result");
}

/** Colour is for a person at a terminal: never into a pipe or a file, never with NO_COLOR set. */
export function colourOn(stream: NodeJS.WriteStream): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

type Style = Parameters<typeof styleText>[0];

export function paint(stream: NodeJS.WriteStream, style: Style, text: string): string {
  return colourOn(stream) ? styleText(style, text) : text;
}

/** How plan and status lines read at a glance: additions, removals, changes, trouble. */
const LINE_STYLES: readonly [RegExp, Style][] = [
  [/^\s+\+ /, "green"],
  [/^\s+- /, "red"],
  [/^\s+~ /, "yellow"],
  [/^\s+! |UNREACHABLE|DOWN|conflict:/, "red"],
  [/^\s+in sync/, "green"],
];

function colourLines(text: string): string {
  return text.replace(/^.*$/gm, (line) => {
    const style = LINE_STYLES.find(([re]) => re.test(line))?.[1];
    return style ? styleText(style, line) : line;
  });
}

/**
 * Print a command's report: the JSON document with --json, nothing with --quiet, else the text
 * for people (coloured on a terminal).
 */
export function report(opts: OutputOptions, text: () => string, json: () => unknown): void {
  if (opts.quiet) return;
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(json(), null, 2)}\n`);
    return;
  }
  const human = text();
  process.stdout.write(colourOn(process.stdout) ? colourLines(human) : human);
}
