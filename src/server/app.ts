import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance } from "fastify";
import { applySite, planSite } from "../apply/apply.js";
import { confirmApply } from "../apply/confirm.js";
import { loadRecord } from "../apply/state/record.js";
import type { Target } from "../apply/target.js";
import { NetpolError } from "../errors.js";
import { planJson } from "../plan/format.js";
import { MAX_POLICY_BYTES } from "../policy/load.js";
import { collectStatus, type SiteStatus } from "../status/collect.js";
import { createMetrics } from "../status/metrics.js";
import { errorBody, installErrorHandling } from "./errors.js";
import { tokenMatches } from "./token.js";
import { Validator } from "./validator.js";

export interface ServerOptions {
  readonly target: Target;
  readonly token: string;
  /** Where key files named by posted policies are looked up; nothing outside it is read. */
  readonly keyDir: string;
  /** The site this server applies, when a posted policy does not say (?site=). */
  readonly site?: string;
  readonly logger?: boolean;
  readonly bodyLimit?: number;
  readonly applyLimit?: Budget;
  /** Dry runs cost no change but a full validation: a budget of their own, apart from applies. */
  readonly dryRunLimit?: Budget;
  /** A status is reused for this long, so a busy /status or /metrics spawns no extra processes. */
  readonly statusMaxAgeMs?: number;
  /** Starts the process that reverts an apply made with ?confirm=N unless POST /confirm comes. */
  readonly revertTimer?: (id: string) => number | undefined;
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
    logger: opts.logger ? { level: "info", redact: ["req.headers.authorization"] } : false,
  });
  installErrorHandling(app, bodyLimit);
  const validator = new Validator();
  app.addHook("onClose", () => validator.close());
  await app.register(rateLimit, { global: false });

  // Policies arrive as text: YAML and JSON go through the same parser the CLI uses.
  app.removeContentTypeParser(["application/json", "text/plain"]);
  app.addContentTypeParser(POLICY_TYPES, { parseAs: "string" }, (_req, body, done) =>
    done(null, body),
  );

  app.addHook("onRequest", async (request, reply) => {
    if (request.url === "/healthz") return;
    if (!tokenMatches(opts.token, request.headers.authorization)) {
      return reply.status(401).send(errorBody("NETPOL_E_UNAUTHORIZED", "missing or wrong token"));
    }
  });

  const metrics = createMetrics();
  const maxAge = opts.statusMaxAgeMs ?? 1000;
  let cached: { at: number; status: Promise<SiteStatus> } | undefined;
  const status = () => {
    const now = Date.now();
    if (!cached || now - cached.at > maxAge) {
      const fresh = collectStatus(opts.target, now);
      cached = { at: now, status: fresh };
      fresh.catch(() => {
        cached = undefined;
      });
    }
    return cached.status;
  };

  // The record only: its policy is validated in the worker, never on the event loop.
  const inForce = async () => {
    const record = await loadRecord(opts.target.files);
    if (!record)
      throw new NetpolError(
        "NETPOL_E_NO_POLICY",
        "no policy has been applied here yet; POST one to /apply",
      );
    return { record, text: record.policyText };
  };

  app.get("/healthz", async () => ({ ok: true }));

  app.get("/status", async () => status());

  app.get("/plan", async () => {
    const { record, text } = await inForce();
    const validated = await validator.validate(text, "policy in force", record.site);
    const policy = { ...validated, keyDir: opts.keyDir, site: record.site };
    return planJson((await planSite(opts.target, policy)).plan);
  });

  const applyBudget = opts.applyLimit ?? { max: 10, timeWindow: 60_000 };
  const dryRunBudget = opts.dryRunLimit ?? { max: 30, timeWindow: 60_000 };
  const isDryRun = (request: { query: unknown }) =>
    (request.query as { dryRun?: string }).dryRun === "1";
  const budget = (request: { query: unknown }) => (isDryRun(request) ? dryRunBudget : applyBudget);

  app.post<{ Body: string; Querystring: { dryRun?: string; site?: string; confirm?: string } }>(
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
      const site = request.query.site ?? opts.site ?? (await loadRecord(opts.target.files))?.site;
      if (site === undefined)
        throw new NetpolError("NETPOL_E_USAGE", "say which site to apply: ?site=NAME");
      // A malformed request is refused before the policy costs a validation.
      const seconds =
        request.query.confirm === undefined ? undefined : Number(request.query.confirm);
      if (seconds !== undefined && !(Number.isInteger(seconds) && seconds > 0 && opts.revertTimer))
        throw new NetpolError(
          "NETPOL_E_USAGE",
          opts.revertTimer
            ? `confirm takes a whole number of seconds, not ${request.query.confirm}`
            : "this server cannot arm a revert; apply without ?confirm",
        );
      const validated = await validator.validate(request.body, "request body", site);
      const policy = { ...validated, keyDir: opts.keyDir, site };
      if (isDryRun(request))
        return { dryRun: true, plan: planJson((await planSite(opts.target, policy)).plan) };
      const started = process.hrtime.bigint();
      try {
        const timer = opts.revertTimer;
        const result = await applySite(
          opts.target,
          policy,
          `http ${request.ip}`,
          seconds !== undefined && timer ? { confirm: { seconds, startTimer: timer } } : {},
        );
        metrics.applies.inc({ result: result.changed ? "changed" : "unchanged" });
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
        metrics.applies.inc({
          result:
            err instanceof NetpolError && err.code === "NETPOL_E_LOCKED" ? "refused" : "failed",
        });
        throw err;
      } finally {
        metrics.applySeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
        cached = undefined;
      }
    },
  );

  app.post("/confirm", async () => {
    await confirmApply(opts.target);
    cached = undefined;
    return { confirmed: true };
  });

  app.get("/metrics", async (_request, reply) => {
    metrics.observe(await status());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return app;
}
