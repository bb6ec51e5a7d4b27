import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { bashCompletion, zshCompletion } from "../completion.js";

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: `source <(netpol completion bash)`")
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell !== "bash" && shell !== "zsh") {
        throw new NetpolError(
          "NETPOL_E_USAGE",
          `no completion for ${shell}; use \`netpol completion bash\` or \`netpol completion zsh\``,
        );
      }
      process.stdout.write(shell === "bash" ? bashCompletion(program) : zshCompletion(program));
    });
}
