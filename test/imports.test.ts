import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";

const SRC = path.join(import.meta.dirname, "../src");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith(".ts") ? [full] : [];
  });
}

/** Each source file's relative imports (type-only ones too: a circle of types is still one). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found = [...text.matchAll(/^(?:import|export)[^;]*?from\s+"(\.{1,2}\/[^"]+)\.js";/gms)];
  return found.map((m) => path.join(path.dirname(file), `${m[1]}.ts`));
}

it("no source file imports itself back through others (src/ has no import circle)", () => {
  const graph = new Map(sources(SRC).map((f) => [f, importsOf(f)]));
  const circles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const walk = (file: string, trail: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      const loop = trail.slice(trail.indexOf(file)).map((f) => path.relative(SRC, f));
      circles.push(loop.join(" -> "));
      return;
    }
    state.set(file, "open");
    for (const next of graph.get(file) ?? []) walk(next, [...trail, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) walk(file, []);
  expect(circles).toEqual([]);
});
