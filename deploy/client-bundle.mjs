// The dashboard's script and stylesheet as a browser loads them: one minified file each, made
// from src/server/dashboard/client. deploy/bundle.mjs writes them into lib/ui; the server run
// from its TypeScript sources (tests, tsx) builds them in memory with this same function.
import path from "node:path";
import { build } from "esbuild";

export async function bundleClient(root = ".") {
  const dir = path.join(root, "src/server/dashboard/client");
  const common = {
    bundle: true,
    minify: true,
    write: false,
    logLevel: "warning",
    legalComments: "none",
  };
  const [script, style] = await Promise.all([
    build({
      ...common,
      entryPoints: [path.join(dir, "main.ts")],
      format: "iife",
      platform: "browser",
      target: "es2020",
    }),
    build({ ...common, entryPoints: [path.join(dir, "dashboard.css")] }),
  ]);
  return { script: script.outputFiles[0].text, style: style.outputFiles[0].text };
}
