import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { readPolicyText } from "../../apply/source/file.js";
import { grantFleet } from "../../fleet/grant.js";
import { parsePolicy } from "../../policy/load.js";
import { type EtcdOptions, etcdFrom, etcdOptions } from "../etcd-options.js";
import { type OutputOptions, outputOptions, report } from "../output.js";

interface GrantOptions extends EtcdOptions, OutputOptions {
  out: string;
  enableAuth?: boolean;
}

export function registerFleet(program: Command): void {
  const fleet = program.command("fleet").description("set up a fleet in etcd");
  etcdOptions(
    outputOptions(fleet.command("grant"))
      .description(
        "make etcd's roles and users for the publisher and each site of a policy (RBAC: a site writes only its own reports); new users' passwords go to --out, one 0600 file each",
      )
      .argument("<policy>", "policy file (YAML): its sites get a user each")
      .requiredOption("--out <dir>", "where to write new users' password files (USER.password)")
      .option("--enable-auth", "then turn etcd authentication on (needs a root user)"),
  ).action(async (file: string, opts: GrantOptions) => {
    const { intent } = parsePolicy(await readPolicyText(file), file);
    const etcd = await etcdFrom(opts);
    try {
      const granted = await grantFleet(
        etcd,
        intent.sites.map((s) => s.name),
        opts.enableAuth === true,
      );
      await mkdir(opts.out, { recursive: true, mode: 0o700 });
      for (const [user, password] of granted.created)
        await writeFile(path.join(opts.out, `${user}.password`), `${password}\n`, {
          mode: 0o600,
          flag: "wx",
        });
      report(
        opts,
        () =>
          `${[
            ...[...granted.created.keys()].map(
              (u) => `created ${u} (password in ${path.join(opts.out, `${u}.password`)})`,
            ),
            ...granted.existing.map(
              (u) =>
                `${u} existed already: its role was granted again, its password left as it was`,
            ),
            granted.authEnabled ? "etcd authentication is on" : "",
          ]
            .filter(Boolean)
            .join("\n")}\n`,
        () => ({
          created: [...granted.created.keys()],
          existing: granted.existing,
          authEnabled: granted.authEnabled,
        }),
      );
    } finally {
      etcd.close();
    }
  });
}
