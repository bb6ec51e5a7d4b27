import path from "node:path";
import type { Command } from "commander";
import { NetpolError } from "../../errors.js";
import { interfaceNameProblem } from "../../net/names.js";
import { parseProviderConf } from "../../policy/provider-conf.js";
import { type ProviderKeyFiles, providerLines } from "../../policy/provider-lines.js";
import { publicKeyOf, writePrivateKey } from "../../system/keys.js";
import { readSmallFile } from "../../system/small-file.js";
import { type OutputOptions, outputOptions, report } from "../output.js";

/** A wg-quick file is a few hundred bytes; anything this large is not one. */
const MAX_CONF_BYTES = 64 * 1024;

interface ImportOptions extends OutputOptions {
  readonly name: string;
  readonly keyDir: string;
}

async function readConf(file: string): Promise<string> {
  const read = await readSmallFile(file, MAX_CONF_BYTES);
  if (read.ok) return read.text;
  const why =
    read.why === "missing"
      ? "it does not exist"
      : read.why === "not a file"
        ? `it is ${read.is}`
        : read.why === "too large"
          ? `it is ${read.size} bytes, not a wg-quick file`
          : `cannot be read (${read.why === "error" ? read.code : read.why})`;
  throw new NetpolError("NETPOL_E_PROVIDER_CONF", `${file}: ${why}`);
}

export function registerImportProvider(program: Command): void {
  outputOptions(
    program
      .command("import-provider")
      .description(
        "turn a provider's wg-quick file (Mullvad, Proton…) into a path netpol manages: its keys go to the key directory (0600), the policy lines are printed",
      )
      .argument("<file>", "the provider's wg-quick .conf")
      .requiredOption("--name <name>", "the path's name: its WireGuard device, named in `via`")
      .option("--key-dir <dir>", "the policy's key directory, where the key files go", "."),
  ).action(async (file: string, opts: ImportOptions) => {
    const problem = interfaceNameProblem(opts.name);
    if (problem) throw new NetpolError("NETPOL_E_USAGE", `--name ${opts.name}: ${problem}`);
    // Everything is checked before the first key file is written.
    const conf = parseProviderConf(await readConf(file), file);
    const files: ProviderKeyFiles = {
      privateKeyFile: `${opts.name}.key`,
      ...(conf.peer.presharedKey !== undefined ? { presharedKeyFile: `${opts.name}.psk` } : {}),
    };
    await writePrivateKey(path.join(opts.keyDir, files.privateKeyFile), conf.privateKey);
    if (files.presharedKeyFile !== undefined && conf.peer.presharedKey !== undefined)
      await writePrivateKey(path.join(opts.keyDir, files.presharedKeyFile), conf.peer.presharedKey);
    const lines = providerLines(opts.name, conf, publicKeyOf(conf.privateKey), files);
    const notes = conf.ignored.map(
      (i) => `# ${file}:${i.line}: ${i.key} is wg-quick's; netpol does not run or need it`,
    );
    const usage = `# then name it in an egress: via: [${opts.name}, …] with masquerade: true`;
    report(
      opts,
      () =>
        `# under sites.SITE (key files written to ${opts.keyDir}, mode 0600)\n${lines}${[...notes, usage].join("\n")}\n`,
      () => ({
        name: opts.name,
        keyDir: opts.keyDir,
        keyFiles: files,
        lines,
        ignored: conf.ignored,
      }),
    );
  });
}
