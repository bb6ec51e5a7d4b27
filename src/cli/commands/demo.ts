import type { Command } from "commander";
import { DEMO_DIR, runDemo } from "../../lab/demo.js";
import { labDown } from "../../lab/lab.js";

/** The script this process runs (bin/netpol.js): the CLI again, bundled or not. */
const MAIN = process.argv[1] ?? "";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "build a namespace lab, apply the scenario policy and show traffic taking its paths",
    )
    .option("--down", "remove the lab: its namespaces and processes")
    .action(async (opts: { down?: boolean }) => {
      const say = (line: string) => process.stdout.write(`${line}\n`);
      if (opts.down) {
        say((await labDown(DEMO_DIR)) ? "lab removed" : "no lab to remove");
        return;
      }
      if (!(await runDemo(MAIN, say))) process.exitCode = 1;
    });
}
