import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import { applySite } from "../apply/apply.js";
import { dryRun } from "../apply/dry-run.js";
import { confirmApply, revertNow } from "../apply/rollback/confirm.js";
import { parseConfirmSeconds } from "../apply/rollback/confirm-window.js";
import { planSite } from "../apply/site/plan-site.js";
import { fromInForce } from "../apply/source/in-force.js";
import type { PolicyInput } from "../apply/source/input.js";
import { fromText, type Validate } from "../apply/source/text.js";
import { loadRecord } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";
import { planJson } from "../plan/format.js";
import { MAX_POLICY_BYTES } from "../policy/load.js";
import type { EventBus } from "../resident/events.js";
import type { Resident } from "../resident/resident.js";
import { collectStatus, type SiteStatus } from "../status/collect.js";
import { createMetrics } from "../status/metrics.js";
import { installAuth } from "./auth.js";
import { pageAssets } from "./dashboard/assets.js";
import { EventLog } from "./dashboard/events.js";
import {
  DashboardFeed,
  type FeedSources,
  type FeedTiming,
  type RemoteSource,
} from "./dashboard/feed.js";
import { loginPage } from "./dashboard/page.js";
import { registerDashboard } from "./dashboard/routes.js";
import { SeriesStore } from "./dashboard/series.js";
import { SessionStore } from "./dashboard/session.js";
import { installErrorHandling } from "./errors.js";
import { Revalidating } from "./revalidating.js";
import { sendStatus } from "./status-answer.js";
import { Validator } from "./validator.js";

/** A resident's link events, as the page's feed takes them: a link that came, went, or flapped. */
function linkEventsOf(bus: EventBus): NonNullable<FeedSources["linkChanges"]> {
  return (onChange, signal) => {
    const off = bus.on((e) => {
      if (e.event === "link") onChange();
    });
    signal.addEventListener("abort", off, { once: true });
  };
}

export interface ServerOptions {
  readonly target: Target;
  readonly token: string;
  /** A token that reads everything (the page included) and changes nothing. */
  readonly viewerToken?: string;
  /** Where key files named by posted policies are looked up; nothing outside it is read. */
  readonly keyDir: string;
  /** The site this server applies, when a posted policy does not say (?site=). */
  readonly site?: string;
  /** Logs to stdout (pino), or to the stream given. */
  readonly logger?: boolean | { readonly stream: NodeJS.WritableStream };
  readonly bodyLimit?: number;
  readonly applyLimit?: Budget;
  /** Dry runs cost no change but a full validation: a budget of their own, apart from applies. */
  readonly dryRunLimit?: Budget;
  /** A status is reused for this long, so a busy /status or /metrics spawns no extra processes. */
  readonly statusMaxAgeMs?: number;
  /**
   * Beyond its max age, a status is still served for this long while a new one is read in the
   * background (stale-while-revalidate), so no request waits for a read; 0: requests wait.
   * 30 s, or 0 with a max age of 0 (every request reads the site afresh).
   */
  readonly statusStaleMs?: number;
  /**
   * Log every request at info. Off: /healthz, /status and /metrics, which scrapers and probes
   * poll, log only their failures (a busy scraper wrote megabytes a minute).
   */
  readonly accessLog?: boolean;
  /** Starts the process that reverts an apply made with ?confirm=N unless POST /confirm comes. */
  readonly revertTimer?: (id: string, seconds: number) => number | undefined;
  /** The other sites the page shows beside this one, asked through their `control`. */
  readonly otherSites?: FeedSources["others"];
  /** Calls back when a link changes here, so the page shows it at once. */
  readonly linkChanges?: FeedSources["linkChanges"];
  /** How often the page's data is looked at; `background` starts looking before the first view. */
  readonly dashboard?: Partial<FeedTiming> & { readonly background?: boolean };
  readonly loginLimit?: Budget;
  /**
   * The site's resident process (`netpol serve` hosts it): policies are applied through it, in
   * turn with its reconciles; /status is read from its live model; the page hears its link
   * events. Without it (tests of the HTTP layer alone), applies and reads go to the tools. The
   * fleet agent's comes later (with the site's first revision): it gives a `LaterResident`.
   */
  readonly resident?: Resident | LaterResident;
  /**
   * The site's policy comes from a fleet in etcd (`netpol agent --listen`): a posted policy is
   * refused (a dry run is not), since the agent would put the published one back; the text
   * says how to publish.
   */
  readonly fleet?: { readonly etcd: readonly string[] };
}

/** A resident its host starts later: its event bus now, the resident once it runs. */
export interface LaterResident {
  readonly bus: EventBus;
  current(): Resident | undefined;
}

export interface Budget {
  readonly max: number;
  readonly timeWindow: number;
}

const POLICY_TYPES = [
  "application/yaml",
  "application/x-yaml",
  "text/yaml",
  "application/json",
  "text/plain",
];

/** The HTTP app, built but not listening: tests drive it with inject(). */
export async function buildApp(opts: ServerOptions): Promise<FastifyInstance> {
  const bodyLimit = opts.bodyLimit ?? MAX_POLICY_BYTES;
  const app = Fastify({
    bodyLimit,
    logger: opts.logger
      ? {
          level: "info",
          redact: ["req.headers.authorization", "req.headers.cookie"],
          ...(typeof opts.logger === "object" ? { stream: opts.logger.stream } : {}),
        }
      : false,
  });
  installErrorHandling(app, bodyLimit);
  // An answer sent once the server began to close ends its connection: the close waits for
  // every connection, and one kept alive stays for fastify's keep-alive timeout (72 s).
  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onSend", async (_request, reply) => {
    if (closing) reply.header("connection", "close");
  });
  const validator = new Validator();
  app.addHook("onClose", () => validator.close());
  await app.register(rateLimit, { global: false });

  // Policies arrive as text: YAML and JSON go through the same parser the CLI uses.
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser(POLICY_TYPES, { parseAs: "string" }, (_req, body, done) =>
    done(null, body),
  );

  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string" },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );

  const sessions = new SessionStore();
  installAuth(app, {
    token: opts.token,
    ...(opts.viewerToken !== undefined ? { viewerToken: opts.viewerToken } : {}),
    sessions,
    loginPage: async () => loginPage((await pageAssets()).paths),
  });

  const metrics = createMetrics();
  const maxAge = opts.statusMaxAgeMs ?? 1000;
  const held = opts.resident;
  /** The resident at this moment (a later one may not run yet). */
  const residentNow = () => (held && "current" in held ? held.current() : held);
  const statuses = new Revalidating<SiteStatus>(
    (now) => residentNow()?.status(now) ?? collectStatus(opts.target, now),
    maxAge,
    opts.statusStaleMs ?? (maxAge > 0 ? 30_000 : 0),
  );
  const status = () => statuses.get();
  // Polled routes log their failures only, unless every request is to be logged.
  const polled = { logLevel: opts.accessLog ? "info" : "warn" } as const;

  const events = new EventLog();
  const timing = { activeMs: 1000, idleMs: 10_000, now: Date.now, ...opts.dashboard };
  const feed = new DashboardFeed(
    {
      site: opts.site ?? "this site",
      // A look that must see the site as it is now (a link changed) reads it again.
      local: (fresh) => {
        if (fresh) statuses.invalidate();
        return statuses.get();
      },
      others: opts.otherSites ?? (async (): Promise<RemoteSource[]> => []),
      ...(opts.linkChanges
        ? { linkChanges: opts.linkChanges }
        : held
          ? { linkChanges: linkEventsOf(held.bus) }
          : {}),
    },
    events,
    new SeriesStore(),
    timing,
  );
  if (opts.dashboard?.background) feed.start();
  await registerDashboard(app, {
    feed,
    sessions,
    token: opts.token,
    ...(opts.viewerToken !== undefined ? { viewerToken: opts.viewerToken } : {}),
    loginLimit: opts.loginLimit ?? { max: 10, timeWindow: 60_000 },
  });
  /** After this server changed the site: the next status is a new read, and pages see it. */
  const changed = (site: string | null, text: string) => {
    statuses.invalidate();
    events.record({ site, level: "info", text });
    void feed.refresh();
  };

  // The resident changed the site by itself (a reaction, a reconcile): the next status is new.
  if (held) {
    const off = held.bus.on((e) => {
      if (e.event === "applied" || e.event === "reaction") statuses.invalidate();
    });
    app.addHook("onClose", async () => off());
  }

  // A policy is validated in the worker, never on the event loop; one whose compiled state the
  // cache holds (the text last applied here) is not validated again.
  const inWorker: Validate = async ({ text, name, site, keyDir }) => ({
    ...(await validator.validate(text, name, site)),
    keyDir,
    site,
  });

  app.get("/healthz", polled, async () => ({ ok: true }));

  app.get("/status", polled, async (request, reply) => {
    const { value, at } = await statuses.getStamped();
    return sendStatus(request, reply, value, at, Date.now());
  });

  const inForce = async (): Promise<PolicyInput> => {
    const found = await fromInForce(opts.target.files, opts.keyDir, inWorker);
    if (!found)
      throw new NetpolError(
        "NETPOL_E_NO_POLICY",
        "no policy has been applied here yet; POST one to /apply",
      );
    return found.policy;
  };

  /** A plan reads the site as the resident holds it, when there is one. */
  const planned = (policy: PolicyInput) => {
    const resident = residentNow();
    return resident
      ? planSite(resident.target, policy, false, resident.model.peek)
      : planSite(opts.target, policy);
  };

  app.get("/plan", async () => planJson((await planned(await inForce())).plan));

  const applyBudget = opts.applyLimit ?? { max: 10, timeWindow: 60_000 };
  const dryRunBudget = opts.dryRunLimit ?? { max: 30, timeWindow: 60_000 };
  const isDryRun = (request: { query: unknown }) =>
    (request.query as { dryRun?: string }).dryRun === "1";
  const budget = (request: { query: unknown }) => (isDryRun(request) ? dryRunBudget : applyBudget);

  app.post<{
    Body: string;
    Querystring: { dryRun?: string; site?: string; confirm?: string; replaceSite?: string };
  }>(
    "/apply",
    {
      config: {
        rateLimit: {
          max: (request) => budget(request).max,
          timeWindow: (request) => budget(request).timeWindow,
          keyGenerator: (request) => `${request.ip} ${isDryRun(request) ? "dry run" : "apply"}`,
        },
      },
    },
    async (request) => {
      if (typeof request.body !== "string" || request.body.trim() === "") {
        throw new NetpolError(
          "NETPOL_E_PAYLOAD",
          "send the policy in the body, as application/yaml or application/json",
        );
      }
      // The fleet's policy is published to etcd, never posted to one site: the agent would
      // put the published one back at its next revision, and the fleet's view would not know.
      if (opts.fleet && !isDryRun(request))
        throw new NetpolError(
          "NETPOL_E_FLEET_MANAGED",
          `nothing applied: this site's policy comes from the fleet in etcd (netpol agent, ${opts.fleet.etcd.join(",")}); publish it there with \`netpol publish POLICY --etcd ${opts.fleet.etcd.join(",")}\` (its --dry-run plans every site), or dry-run it here with ?dryRun=1`,
        );
      const site = request.query.site ?? opts.site ?? (await loadRecord(opts.target.files))?.site;
      if (site === undefined)
        throw new NetpolError("NETPOL_E_USAGE", "say which site to apply: ?site=NAME");
      // A server started for one site applies no other: a push meant for another machine.
      if (opts.site !== undefined && site !== opts.site)
        throw new NetpolError(
          "NETPOL_E_WRONG_SITE",
          `nothing applied: this server applies site "${opts.site}" (netpol serve --site ${opts.site}), and the request is for site "${site}"; check the --remote pushed to. For a rename, restart serve with --site ${site} and push with --replace-site`,
        );
      const replaceSite = request.query.replaceSite === "1";
      // A malformed request is refused before the policy costs a validation.
      const seconds =
        request.query.confirm === undefined
          ? undefined
          : parseConfirmSeconds(request.query.confirm, "?confirm=");
      if (seconds !== undefined && !opts.revertTimer)
        throw new NetpolError(
          "NETPOL_E_USAGE",
          "this server cannot arm a revert; apply without ?confirm",
        );
      const body = { text: request.body, name: "request body", site, keyDir: opts.keyDir };
      const policy = await fromText(opts.target.files, body, inWorker);
      if (isDryRun(request))
        return {
          dryRun: true,
          plan: planJson((await dryRun(opts.target, policy, replaceSite)).plan),
        };
      return applied(request, policy, seconds, replaceSite);
    },
  );

  /** Applies through the same code as the CLI, counts it, and tells the page. */
  async function applied(
    request: FastifyRequest,
    policy: PolicyInput,
    seconds: number | undefined,
    replaceSite = false,
  ) {
    const by = `${request.principal?.session ? "dashboard" : "http"} ${request.ip}`;
    const started = process.hrtime.bigint();
    try {
      const timer = opts.revertTimer;
      const options = {
        replaceSite,
        ...(seconds !== undefined && timer ? { confirm: { seconds, startTimer: timer } } : {}),
      };
      const resident = residentNow();
      const result = resident
        ? await resident.apply(policy, by, options)
        : await applySite(opts.target, policy, by, options);
      metrics.applies.inc({ result: result.changed ? "changed" : "unchanged" });
      const n = result.plan.changes.length;
      changed(
        policy.site,
        `${policy.site}: policy ${result.record.policyHash.slice(0, 12)} applied by ${by}, ${n} change${n === 1 ? "" : "s"}${result.pending ? `; reverts at ${result.pending.deadline} unless confirmed` : ""}`,
      );
      return {
        changed: result.changed,
        plan: planJson(result.plan),
        policy: { hash: result.record.policyHash, appliedAt: result.record.appliedAt },
        ...(result.pending
          ? { confirmWithinSeconds: seconds, confirmDeadline: result.pending.deadline }
          : {}),
        ...(result.notes.length > 0 ? { notes: result.notes } : {}),
      };
    } catch (err) {
      const refused = err instanceof NetpolError && err.code === "NETPOL_E_LOCKED";
      metrics.applies.inc({ result: refused ? "refused" : "failed" });
      statuses.invalidate();
      events.record({
        site: policy.site,
        level: "bad",
        text: `${policy.site}: apply by ${by} ${refused ? "refused" : "failed"}: ${err instanceof Error ? err.message : String(err)}`,
      });
      throw err;
    } finally {
      metrics.applySeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  app.post("/reapply", { config: { rateLimit: applyBudget } }, async (request) => {
    return applied(request, await inForce(), undefined);
  });

  const siteHere = async () => (await loadRecord(opts.target.files))?.site ?? opts.site ?? null;

  const settled = async (how: "confirmed" | "reverted", from: string) => {
    // A revert changed the site behind the live model's back; a confirm changes the record.
    residentNow()?.refresh();
    const site = await siteHere();
    changed(
      site,
      `${site ?? "this site"}: the apply awaiting confirmation was ${how} from ${from}`,
    );
  };

  app.post("/confirm", async (request) => {
    await confirmApply(opts.target);
    await settled("confirmed", request.ip);
    return { confirmed: true };
  });

  app.post("/revert", async (request) => {
    await revertNow(opts.target);
    await settled("reverted", request.ip);
    return { reverted: true };
  });

  app.get("/metrics", polled, async (_request, reply) => {
    metrics.observe(await status());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return app;
}
