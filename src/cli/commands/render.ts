import { mkdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { readPolicyFile } from "../../apply/source/file.js";
import { compileSite } from "../../compile/compile.js";
import type { SiteState } from "../../compile/desired.js";
import { renderSiteFiles } from "../../render/site-files.js";
import { resolveKeyPath } from "../../system/keys.js";
import { readPrivateKeys } from "../../system/private-keys.js";
import { type OutputOptions, outputOptions, report } from "../output.js";

/**
 * The site's private keys, with a placeholder (and a warning) for each key file that does not
 * exist yet, so a newcomer can render the examples before making keys. The placeholder is not a
 * key: `wg` refuses the file until the real key is in it. A key file that exists is checked as
 * for an apply.
 */
async function keysOrPlaceholders(state: SiteState, keyDir: string): Promise<Map<string, string>> {
  const absent = new Set<string>();
  for (const wg of state.wireguard) {
    const file = resolveKeyPath(keyDir, wg.privateKeyFile);
    if (!(await stat(file).catch(() => undefined))) absent.add(wg.privateKeyFile);
  }
  const keys = await readPrivateKeys(
    { ...state, wireguard: state.wireguard.filter((w) => !absent.has(w.privateKeyFile)) },
    keyDir,
  );
  for (const name of absent) {
    const file = resolveKeyPath(keyDir, name);
    process.stderr.write(
      `netpol: warning: ${file} does not exist; the WireGuard config holds a placeholder instead of a private key. Make the key with \`netpol keygen --out ${file}\` and put its public key in the policy\n`,
    );
    keys.set(name, `(placeholder: no key file ${name}; run netpol keygen --out ${file})`);
  }
  return keys;
}

export interface RenderOptions {
  readonly site: string;
  readonly out: string;
  readonly keyDir?: string;
}

/**
 * What `netpol render` does, output aside: the written files' paths. Nothing is written until
 * the policy is read, compiled and rendered whole, so a bad policy leaves `out` untouched.
 */
export async function renderPolicyFile(file: string, opts: RenderOptions): Promise<string[]> {
  const policy = await readPolicyFile(file, opts.keyDir);
  const state = compileSite(policy.intent, opts.site);
  const keys = await keysOrPlaceholders(state, policy.keyDir);
  const files = renderSiteFiles(state, keys);
  const written: string[] = [];
  for (const [name, content] of files) {
    const target = path.join(opts.out, name);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    // Everything here may hold a key or reveal the topology: owner-only.
    await writeFile(target, content, { mode: 0o600 });
    written.push(target);
  }
  return written;
}

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
  ).action(async (file: string, opts: OutputOptions & RenderOptions) => {
    const written = await renderPolicyFile(file, opts);
    report(
      opts,
      () => written.map((f) => `wrote ${f}\n`).join(""),
      () => ({ site: opts.site, files: written }),
    );
  });
}
