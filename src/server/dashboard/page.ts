import type { SiteEvent } from "./events.js";
import type { Snapshot } from "./feed.js";
import { type Html, html } from "./html.js";
import { plotSvg } from "./plot.js";
import { WINDOW_MS } from "./series.js";
import type { Role } from "./session.js";
import { topologySvg } from "./topology.js";
import { formatWhen, type Item, type SiteView } from "./view.js";

/** Who the page is drawn for: a viewer gets no buttons; forms carry the session's CSRF token. */
export interface Viewer {
  readonly role: Role;
  /** Empty in streamed regions: the page's script fills it in from its meta tag. */
  readonly csrf: string;
}

/** Where the page's own script and stylesheet are (their names carry a digest of the content). */
export interface AssetPaths {
  readonly script: string;
  readonly style: string;
  readonly icon: string;
}

export const REGIONS = ["pending", "topology", "summary", "events", "plots", "sites"] as const;
export type Region = (typeof REGIONS)[number];

const clock = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

function button(viewer: Viewer, action: string, label: string, kind = ""): Html {
  return html`<form method="post" action="${action}" class="action"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" class="${kind}">${label}</button></form>`;
}

const readOnly = html`<p class="muted">Read-only: the viewer token shows the state and changes nothing.</p>`;

function pending(local: SiteView, viewer: Viewer): Html {
  const p = local.pending;
  if (!p) return html``;
  return html`<div class="pending" data-pending="${p.policyHash}">
<h2>An apply awaits confirmation</h2>
<p>Policy <code>${p.policyHash}</code>, applied by ${p.appliedBy}, reverts by itself at <time datetime="${p.deadline}">${formatWhen(p.deadline)}</time><span data-deadline="${p.deadline}"></span> unless it is confirmed.</p>
${viewer.role === "admin" ? html`<div class="actions">${button(viewer, "/confirm", "Confirm: keep it")}${button(viewer, "/revert", "Revert now", "danger")}</div>` : readOnly}
</div>`;
}

function facts(list: SiteView["facts"]): Html {
  return html`<dl class="facts">${list.map((f) => html`<div><dt>${f.label}</dt><dd>${f.value}</dd></div>`)}</dl>`;
}

function summary(local: SiteView, viewer: Viewer): Html {
  return html`<h2>Policy in force on ${local.name}</h2>
<p class="state"><span class="badge h-${local.health}">${local.state}</span></p>
${facts(local.facts)}
${local.drift.length > 0 ? html`<details><summary>${local.drift.length} change${local.drift.length === 1 ? "" : "s"} an apply would make now</summary><ul class="drift">${local.drift.map((d) => html`<li><code>${d}</code></li>`)}</ul></details>` : ""}
${viewer.role === "admin" ? html`<div class="actions">${button(viewer, "/reapply", "Re-apply the policy in force")}</div><p class="muted">The policy itself is edited in its file (or etcd), never here: the page only confirms, reverts and re-applies.</p>` : readOnly}`;
}

function row(i: Item, depth: number): Html {
  return html`<tr data-item="${i.id}" data-health="${i.health}" class="depth-${depth}">
<th scope="row">${depth > 0 ? html`<span class="muted">${i.kind} </span>` : ""}${i.name}</th>
<td><span class="badge h-${i.health}">${i.state}</span></td>
<td>${i.facts.map((f) => html`<span class="fact">${f.label} <strong>${f.value}</strong></span> `)}</td>
</tr>${i.parts.map((p) => row(p, depth + 1))}`;
}

function table(title: string, items: readonly Item[]): Html {
  if (items.length === 0) return html``;
  return html`<h3>${title}</h3>
<table><thead><tr><th scope="col">name</th><th scope="col">state</th><th scope="col">details</th></tr></thead>
<tbody>${items.map((i) => row(i, 0))}</tbody></table>`;
}

function site(s: SiteView): Html {
  return html`<article class="site" data-site="${s.name}" data-health="${s.health}" aria-labelledby="site-${s.id}">
<h2 id="site-${s.id}">${s.name} <span class="badge h-${s.health}">${s.state}</span>${s.local ? html` <span class="muted">(this site)</span>` : ""}</h2>
${facts(s.facts)}
${s.notes.map((n) => html`<p class="note">${n}</p>`)}
${table("Tunnels", s.tunnels)}${table("Egress", s.egress)}${table("Published services", s.services)}
</article>`;
}

function event(e: SiteEvent): Html {
  return html`<li class="lvl-${e.level}"><time datetime="${new Date(e.at).toISOString()}">${clock(e.at)}</time> ${e.text}</li>`;
}

/** Each region's markup: what the page first shows, and what its stream replaces. */
export function regions(s: Snapshot, viewer: Viewer): Record<Region, Html> {
  const local = s.sites[0];
  return {
    pending: local ? pending(local, viewer) : html``,
    summary: local ? summary(local, viewer) : html``,
    topology: html`<h2 id="topology-heading">Topology</h2>${topologySvg(s.sites)}`,
    sites: html`${s.sites.map(site)}`,
    plots: html`<h2>Last ${WINDOW_MS / 60_000} minutes</h2>${
      s.series.length > 0
        ? html`<div class="plots">${s.series.map((x) => plotSvg(x, s.at, WINDOW_MS))}</div>`
        : html`<p class="muted">Nothing measured yet.</p>`
    }`,
    events: html`<h2>Recent events</h2>${
      s.events.length > 0
        ? html`<ol class="events">${s.events.map(event)}</ol>`
        : html`<p class="muted">Nothing happened yet.</p>`
    }`,
  };
}

function document(title: string, assets: AssetPaths, head: Html, body: Html): string {
  return `<!doctype html>\n${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${head}
<title>${title}</title>
<link rel="icon" href="${assets.icon}" type="image/svg+xml">
<link rel="stylesheet" href="${assets.style}">
<script src="${assets.script}" defer></script>
</head>
<body>
${body}
</body>
</html>`}\n`;
}

/** The whole page, readable without its script: every region drawn on the server. */
export function dashboardPage(s: Snapshot, viewer: Viewer, assets: AssetPaths): string {
  const parts = regions(s, viewer);
  const name = s.sites[0]?.name ?? "netpol";
  return document(
    `${name} — netpol`,
    assets,
    html`<meta name="csrf-token" content="${viewer.csrf}">`,
    html`<header class="bar">
<h1>netpol <span class="muted">${name}</span></h1>
<p id="live" class="muted" data-role="${viewer.role}">as of ${clock(s.at)}${viewer.role === "viewer" ? " · read-only" : ""}</p>
<p id="notice" role="status"></p>
${button(viewer, "/logout", "Log out", "quiet")}
</header>
<main>
${REGIONS.map(
  (
    r,
  ) => html`<section class="region region-${r}" data-region="${r}"${r === "pending" ? html` aria-live="polite"` : ""}>${parts[r]}</section>
`,
)}
</main>`,
  );
}

/** The form that exchanges the token for a session (answered with 401 where one is needed). */
export function loginPage(assets: AssetPaths, problem?: string): string {
  return document(
    "Log in — netpol",
    assets,
    html``,
    html`<main class="login">
<h1>netpol</h1>
<form method="post" action="/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
${problem ? html`<p class="note" role="alert">${problem}</p>` : ""}
<button type="submit">Log in</button>
<p class="muted">The token of <code>netpol serve --token-file</code>, or the read-only one of <code>--viewer-token-file</code>. It is exchanged for a session cookie and kept nowhere in the browser.</p>
</form>
</main>`,
  );
}
