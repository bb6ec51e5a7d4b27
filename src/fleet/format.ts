import type { Published } from "./publish.js";
import type { RolloutView } from "./rollout.js";
import type { FleetRow } from "./view.js";

const cell = (v: string | number | null) => (v === null ? "-" : String(v));

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `  ${l}\n`).join("");
}

export function formatFleet(rows: readonly FleetRow[], serial: number | undefined): string {
  const head = `fleet: revision ${serial ?? "(none published)"} in etcd, ${rows.length} sites\n`;
  return (
    head +
    table(
      ["SITE", "REVISION", "RESULT", "STATE", "DRIFT", "TUNNELS", "REPORT AGE"],
      rows.map((r) => [
        r.site,
        cell(r.serial),
        cell(r.result),
        r.stale ? (r.serial === null ? "NO REPORT" : "STALE") : r.state,
        cell(r.drift),
        r.tunnels ? `${r.tunnels.up}/${r.tunnels.of}` : "-",
        r.reportAgeSeconds === null ? "-" : `${r.reportAgeSeconds}s`,
      ]),
    )
  );
}

export function formatRollout(view: RolloutView): string {
  const { head, progress } = view;
  const lines = [
    `revision ${head.serial} (policy ${head.hash.slice(0, 12)}), published by ${head.publishedBy} at ${head.publishedAt}${head.rollbackOf !== undefined ? `, a rollback to revision ${head.rollbackOf}` : ""}`,
    `failure budget ${head.failureBudget}; ${head.waves.length} wave${head.waves.length === 1 ? "" : "s"}`,
  ];
  if (progress.kind === "complete") lines.push("rollout complete");
  else if (progress.kind === "running")
    lines.push(
      `rollout running: wave ${progress.wave} waits for ${progress.waitingFor.join(", ")}`,
    );
  else
    lines.push(
      `rollout STOPPED after wave ${progress.wave}: ${progress.failed.join(", ") || "sites"} failed (${progress.failures} failure${progress.failures === 1 ? "" : "s"}, budget ${head.failureBudget}); the sites after it were not touched`,
    );
  const rows = view.sites.map((s) => [
    String(s.wave),
    s.site,
    s.state,
    s.ledger ? `${s.ledger.serial} ${s.ledger.result}` : "-",
    s.live ? s.live.state : "no live report",
    s.ledger?.error ?? s.live?.message ?? "",
  ]);
  return `${lines.join("\n")}\n${table(["WAVE", "SITE", "ROLLOUT", "REPORTED", "AGENT", "NOTE"], rows)}`;
}

export function formatPublished(p: Published, whole: readonly string[]): string {
  const what = p.already
    ? `revision ${p.serial} already holds this policy; its ${p.sites} sites' parts were written again`
    : `published revision ${p.serial} to ${p.sites} sites`;
  const notes = [
    p.superseded
      ? "a newer publish took over while the sites were written; it writes them all"
      : "",
    whole.length > 0
      ? `sites given the whole policy (their part could not be cut smaller): ${whole.join(", ")}`
      : "",
  ].filter(Boolean);
  return `${[what, ...notes].join("\n")}\nfollow it with \`netpol rollout status\`\n`;
}
