import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { DEMO_NAME, demoDir, runDemo } from "../../lab/demo.js";
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
    .option(
      "--name <prefix>",
      "prefix of the lab's namespaces and devices (2-5 letters), to run beside another demo",
      DEMO_NAME,
    )
    .action(async (opts: { down?: boolean; name: string }) => {
      if (!/^[a-z][a-z0-9]{1,4}$/.test(opts.name)) {
        throw new NetpolError(
          "NETPOL_E_USAGE",
          `--name ${opts.name}: use 2-5 lower-case letters or digits, starting with a letter`,
        );
      }
      const say = (line: string) => process.stdout.write(`${line}\n`);
      if (opts.down) {
        say((await labDown(demoDir(opts.name))) ? "lab removed" : "no lab to remove");
        return;
      }
      if (!(await runDemo(MAIN, say, opts.name))) process.exitCode = 1;
    });
}
