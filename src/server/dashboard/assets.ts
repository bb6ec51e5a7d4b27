import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { AssetPaths } from "./page.js";

/** The tab's icon, so the browser's own request for one is answered. */
const FAVICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="4" cy="8" r="3" fill="#1a7f37"/><circle cx="12" cy="8" r="3" fill="#1a7f37"/><path d="M7 8h2" stroke="#1f2328" stroke-width="2"/></svg>`;

export interface Asset {
  readonly body: string;
  readonly type: string;
}

export interface Assets {
  /** Each asset by the path the page names it at: a digest of its content is in the name. */
  readonly byPath: ReadonlyMap<string, Asset>;
  readonly paths: AssetPaths;
}

/**
 * The script and stylesheet as built into lib/ui by deploy/bundle.mjs, beside the bundle that
 * runs; run from the TypeScript sources (tests, tsx), they are built from the client's sources
 * in memory instead, so a test never sees a stale build.
 */
async function load(): Promise<{ script: string; style: string }> {
  if (import.meta.url.endsWith(".ts")) {
    const root = new URL("../../../", import.meta.url).pathname;
    // A specifier esbuild cannot follow: the bundle must not carry esbuild itself.
    const builder = new URL("../../../deploy/client-bundle.mjs", import.meta.url).href;
    const { bundleClient } = (await import(
      builder
    )) as typeof import("../../../deploy/client-bundle.mjs");
    return bundleClient(root);
  }
  const ui = (name: string) => readFile(new URL(`./ui/${name}`, import.meta.url), "utf8");
  const [script, style] = await Promise.all([ui("dashboard.js"), ui("dashboard.css")]);
  return { script, style };
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 12);

let loaded: Promise<Assets> | undefined;

/** Read (or built) once per process, on first use: servers that never show the page pay nothing. */
export function pageAssets(): Promise<Assets> {
  loaded ??= load().then(({ script, style }) => {
    const paths = {
      script: `/ui/dashboard.${digest(script)}.js`,
      style: `/ui/dashboard.${digest(style)}.css`,
      icon: `/ui/icon.${digest(FAVICON)}.svg`,
    };
    return {
      paths,
      byPath: new Map([
        [paths.script, { body: script, type: "text/javascript; charset=utf-8" }],
        [paths.style, { body: style, type: "text/css; charset=utf-8" }],
        [paths.icon, { body: FAVICON, type: "image/svg+xml" }],
      ]),
    };
  });
  return loaded;
}
