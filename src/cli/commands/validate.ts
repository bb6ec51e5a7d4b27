import type { Command } from "commander";
import { readPolicyFile } from "../../apply/source/file.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { summarize } from "../summary.js";

export function registerValidate(program: Command): void {
  outputOptions(
    program
      .command("validate")
      .description("check a policy and summarize what it does per site")
      .argument("<policy>", "policy file (YAML)"),
  ).action(async (file: string, opts: OutputOptions) => {
    const policy = await readPolicyFile(file);
    report(
      opts,
      () => `${file}: valid\n${summarize(policy.intent)}`,
      () => ({
        file,
        valid: true,
        hash: policy.hash,
        sites: policy.intent.sites.map((s) => s.name),
        summary: summarize(policy.intent).trimEnd().split("\n"),
      }),
    );
  });
}
