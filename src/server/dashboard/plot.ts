import { type Html, html } from "./html.js";
import type { Series } from "./series.js";

const W = 300;
const H = 60;

export function formatRate(value: number, unit: string): string {
  const scaled =
    value >= 1e6
      ? `${(value / 1e6).toFixed(1)} M`
      : value >= 1e3
        ? `${(value / 1e3).toFixed(1)} k`
        : `${value.toFixed(value < 10 ? 1 : 0)} `;
  return `${scaled}${unit}`;
}

/**
 * A small line plot of one series over its window, drawn on the server: the newest point at
 * the right edge, zero at the bottom, the peak at the top.
 */
export function plotSvg(s: Series, now: number, windowMs: number): Html {
  const peak = Math.max(0, ...s.points.map((p) => p.value));
  const last = s.points.at(-1)?.value ?? 0;
  const x = (at: number) => Math.max(0, W - ((now - at) / windowMs) * W);
  const y = (v: number) => (peak === 0 ? H - 1 : H - 1 - (v / peak) * (H - 6));
  const points = s.points.map((p) => `${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  const label = `${s.title}: now ${formatRate(last, s.unit)}, peak ${formatRate(peak, s.unit)} over the last ${Math.round(windowMs / 60_000)} minutes`;
  return html`<figure class="plot" data-series="${s.key}">
<figcaption>${s.title} <span class="now">${formatRate(last, s.unit)}</span></figcaption>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}" preserveAspectRatio="none">
<line class="axis" x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}"></line>
${s.points.length > 1 ? html`<polyline class="trace" points="${points}"></polyline>` : ""}
</svg>
<p class="peak">peak ${formatRate(peak, s.unit)}</p>
</figure>`;
}
