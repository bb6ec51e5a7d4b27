import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { compileSite } from "../../compile/compile.js";
import { renderSiteFiles } from "../../render/site-files.js";
import { readPrivateKeys } from "../../system/private-keys.js";
import { type OutputOptions, outputOptions, report } from "../output.js";
import { readPolicyFile } from "../policy-file.js";

export function registerRender(program: Command): void {
  outputOptions(
    program
      .command("render")
      .description(
        "write the files a site needs: ip.batch, nftables.nft, wireguard/*.conf, caddy.json",
      )
      .argument("<policy>", "policy file (YAML)")
      .requiredOption("--site <name>", "site to render")
      .requiredOption("--out <dir>", "directory to write into")
      .option("--key-dir <dir>", "directory holding the private key files (default: the policy's)"),
  ).action(
    async (file: string, opts: OutputOptions & { site: string; out: string; keyDir?: string }) => {
      const policy = await readPolicyFile(file, opts.keyDir);
      const state = compileSite(policy.intent, opts.site);
      const keys = await readPrivateKeys(state, policy.keyDir);
      const files = renderSiteFiles(state, keys);
      const written: string[] = [];
      for (const [name, content] of files) {
        const target = path.join(opts.out, name);
        await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
        // Everything here may hold a key or reveal the topology: owner-only.
        await writeFile(target, content, { mode: 0o600 });
        written.push(target);
      }
      report(
        opts,
        () => written.map((f) => `wrote ${f}\n`).join(""),
        () => ({ site: opts.site, files: written }),
      );
    },
  );
}
