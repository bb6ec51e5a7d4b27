import { type Html, html } from "./html.js";
import { type Health, type Item, type SiteView, worst } from "./view.js";

const BOX_W = 330;
const GAP = 170;
const MARGIN = 10;
const HEAD_H = 48;
const LINE_H = 20;
const CHARS = 44;

/** A tunnel between two sites, both ends' view of it merged. */
interface Edge {
  readonly a: string;
  readonly b: string;
  readonly health: Health;
  readonly labels: readonly string[];
}

function edgesOf(sites: readonly SiteView[]): Edge[] {
  const byPair = new Map<string, { a: string; b: string; healths: Health[]; labels: string[] }>();
  for (const s of sites) {
    for (const l of s.links) {
      const [a, b] = [s.name, l.to].sort() as [string, string];
      const edge = byPair.get(`${a} ${b}`) ?? { a, b, healths: [], labels: [] };
      byPair.set(`${a} ${b}`, edge);
      edge.healths.push(l.health);
      edge.labels.push(`${s.name} ${l.label}`);
    }
  }
  return [...byPair.values()].map((e) => ({ ...e, health: worst(e.healths) }));
}

const clip = (text: string) => (text.length > CHARS ? `${text.slice(0, CHARS - 1)}…` : text);

function lineOf(i: Item): { health: Health; text: string; id: string } {
  return { health: i.health, text: `${i.kind} ${i.name}: ${i.state}`, id: i.id };
}

function box(s: SiteView | { name: string; missing: true }, x: number): { svg: Html; h: number } {
  const lines =
    "missing" in s ? [] : [...s.tunnels, ...s.egress, ...s.services].map((i) => lineOf(i));
  const h = HEAD_H + Math.max(1, lines.length) * LINE_H + 8;
  const health = "missing" in s ? "unknown" : s.health;
  const state = "missing" in s ? "not watched here (no control)" : s.state;
  return {
    h,
    svg: html`<g class="site" data-site="${s.name}" data-health="${health}">
<rect class="box h-${health}${"missing" in s ? " missing" : ""}" x="${x}" y="${MARGIN}" width="${BOX_W}" height="${h}" rx="8"></rect>
<text class="site-name" x="${x + 14}" y="${MARGIN + 22}">${s.name}</text>
<text class="site-state h-${health}" x="${x + 14}" y="${MARGIN + 40}">${state}</text>
${lines.map(
  (l, k) => html`<g data-item="${l.id}" data-health="${l.health}"><title>${l.text}</title>
<circle class="dot h-${l.health}" cx="${x + 20}" cy="${MARGIN + HEAD_H + k * LINE_H + 10}" r="5"></circle>
<text x="${x + 32}" y="${MARGIN + HEAD_H + k * LINE_H + 14}">${clip(l.text)}</text></g>`,
)}
${lines.length === 0 ? html`<text class="muted" x="${x + 14}" y="${MARGIN + HEAD_H + 14}">nothing to show</text>` : ""}
</g>`,
  };
}

/** One line of text for the picture's accessible name: who is where, and how each link is. */
function summary(sites: readonly SiteView[], edges: readonly Edge[]): string {
  const s = sites.map((x) => `${x.name} ${x.state}`).join("; ");
  const e = edges.map((x) => `tunnel ${x.a} to ${x.b} ${x.health === "ok" ? "up" : "down"}`);
  return [`Sites: ${s}`, ...e].join(". ");
}

/**
 * The picture: each site a box listing its tunnels, egresses and services with their state,
 * and a line for each tunnel between two sites, coloured by its worst end. Sites another site
 * names as a peer but that this page cannot ask are drawn dashed.
 */
export function topologySvg(sites: readonly SiteView[]): Html {
  const edges = edgesOf(sites);
  const known = new Set(sites.map((s) => s.name));
  const missing = [...new Set(edges.flatMap((e) => [e.a, e.b]))]
    .filter((n) => !known.has(n))
    .map((name) => ({ name, missing: true as const }));
  const all = [...sites, ...missing];
  const xOf = new Map(all.map((s, i) => [s.name, MARGIN + i * (BOX_W + GAP)]));
  const boxes = all.map((s) => box(s, xOf.get(s.name) ?? 0));
  const width = MARGIN * 2 + all.length * BOX_W + (all.length - 1) * GAP;
  const adjacent = (e: Edge) => Math.abs((xOf.get(e.a) ?? 0) - (xOf.get(e.b) ?? 0)) === BOX_W + GAP;
  // Room under the boxes for the arcs that join sites further apart.
  const height = MARGIN * 2 + Math.max(...boxes.map((b) => b.h)) + (edges.every(adjacent) ? 0 : 40);
  const lines = edges.map((e, k) => {
    const [xa, xb] = [xOf.get(e.a) ?? 0, xOf.get(e.b) ?? 0].sort((p, q) => p - q) as [
      number,
      number,
    ];
    const y = MARGIN + 24 + k * 6;
    const from = xa + BOX_W;
    const mid = (from + xb) / 2;
    const state = e.health === "ok" ? "up" : "down";
    // Neighbours are joined straight; sites further apart by an arc under the boxes.
    const path = adjacent(e)
      ? `M${from} ${y} L${xb} ${y}`
      : `M${xa + BOX_W / 2} ${height - 30} C${xa + BOX_W / 2} ${height} ${xb + BOX_W / 2} ${height} ${xb + BOX_W / 2} ${height - 30}`;
    return html`<g class="link" data-link="${e.a}~${e.b}" data-health="${e.health}"><title>${e.labels.join("; ")}</title>
<path class="edge h-${e.health}" d="${path}"></path>
<text class="edge-label h-${e.health}" x="${mid}" y="${y - 8}" text-anchor="middle">tunnel ${state}</text></g>`;
  });
  return html`<svg class="topology" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="topology-title" preserveAspectRatio="xMinYMin meet">
<title id="topology-title">${summary(sites, edges)}</title>
${lines}
${boxes.map((b) => b.svg)}
</svg>`;
}
