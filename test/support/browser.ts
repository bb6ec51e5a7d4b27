import { existsSync } from "node:fs";
import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import { type BrowserContext, chromium } from "playwright-core";
import { liveSkipReason } from "./layers.js";

/** Debian's chromium: nothing downloads a browser of its own. */
export const CHROMIUM = "/usr/bin/chromium";

/** Flags that keep a headless chromium to itself: no GPU, no QUIC, no background requests. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why a browser test cannot run here, or undefined when it can. */
export function browserSkipReason(): string | undefined {
  return (
    liveSkipReason() ??
    (existsSync(CHROMIUM) ? undefined : `needs ${CHROMIUM} (apt-get install chromium)`)
  );
}

/**
 * Chromium inside a namespace a test made (through a wrapper that runs it under `ip netns
 * exec`), driven by playwright-core over a pipe: every request it makes, its own background
 * ones included, stays in that namespace. Its profile lives in `dir`.
 */
export async function chromiumIn(netns: string, dir: string): Promise<BrowserContext> {
  const wrapper = path.join(dir, "chromium-in-netns");
  await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${netns} ${CHROMIUM} "$@"\n`);
  await chmod(wrapper, 0o755);
  return chromium.launchPersistentContext(path.join(dir, "profile"), {
    executablePath: wrapper,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
}
