import { createRequire } from "node:module";
import type * as Yaml from "yaml";

/**
 * The `yaml` package, loaded the first time it is asked for: only a policy js-yaml's fast
 * reader refuses (a syntax error, a duplicate key, an alias, a tag) and `netpol down` need it,
 * and compiling it cost every command that reads a policy a tenth of its start-up. Loaded
 * synchronously, so parsePolicy stays synchronous: the bundle ships it as one CommonJS file
 * (deploy/bundle.mjs defines its name); tsc's output and the tests load the package itself.
 */
declare const __NETPOL_YAML__: string | undefined;

let loaded: typeof Yaml | undefined;

export function yamlPackage(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)(
    typeof __NETPOL_YAML__ === "string" ? __NETPOL_YAML__ : "yaml",
  ) as typeof Yaml;
  return loaded;
}
