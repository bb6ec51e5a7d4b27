import type { Command } from "commander";
import { readPolicyFile } from "../policy-file.js";
import { summarize } from "../summary.js";

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check a policy and summarize what it does per site")
    .argument("<policy>", "policy file (YAML)")
    .action(async (file: string) => {
      const policy = await readPolicyFile(file);
      process.stdout.write(`${file}: valid\n${summarize(policy.intent)}`);
    });
}
