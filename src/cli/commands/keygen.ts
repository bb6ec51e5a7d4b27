import type { Command } from "commander";
import { generateKeyPair, writePrivateKey } from "../../system/keys.js";
import { type OutputOptions, outputOptions, report } from "../output.js";

export function registerKeygen(program: Command): void {
  outputOptions(
    program
      .command("keygen")
      .description("write a new WireGuard private key (mode 0600) and print its public key")
      .requiredOption("--out <file>", "file for the private key; must not exist yet"),
  ).action(async (opts: OutputOptions & { out: string }) => {
    const { privateKey, publicKey } = generateKeyPair();
    await writePrivateKey(opts.out, privateKey);
    report(
      opts,
      () => `${publicKey}\n`,
      () => ({ file: opts.out, publicKey }),
    );
  });
}
