import rateLimit from "@fastify/rate-limit";
import Fastify, { type FastifyInstance } from "fastify";
import { applySite, planSite, type Target } from "../apply/apply.js";
import { loadInForce } from "../apply/record.js";
import { filesOf } from "../apply/state-file.js";
import { NetpolError } from "../errors.js";
import { planJson } from "../plan/format.js";
import { parsePolicy } from "../policy/load.js";
import { collectStatus, type SiteStatus } from "../status/collect.js";
import { createMetrics } from "../status/metrics.js";
import { errorBody, installErrorHandling } from "./errors.js";
import { tokenMatches } from "./token.js";

export interface ServerOptions {
  readonly target: Target;
  readonly token: string;
  /** Where key files named by posted policies are looked up; nothing outside it is read. */
  readonly keyDir: string;
  /** The site this server applies, when a posted policy does not say (?site=). */
  readonly site?: string;
  readonly logger?: boolean;
  readonly bodyLimit?: number;
  readonly applyLimit?: { readonly max: number; readonly timeWindow: number };
  /** A status is reused for this long, so a busy /status or /metrics spawns no extra processes. */
  readonly statusMaxAgeMs?: number;
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
  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 256 * 1024,
    logger: opts.logger ? { level: "info", redact: ["req.headers.authorization"] } : false,
  });
  installErrorHandling(app);
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

  const inForce = async () => {
    const found = await loadInForce(filesOf(opts.target));
    if (!found)
      throw new NetpolError(
        "NETPOL_E_NO_POLICY",
        "no policy has been applied here yet; POST one to /apply",
      );
    return found;
  };

  app.get("/healthz", async () => ({ ok: true }));

  app.get("/status", async () => status());

  app.get("/plan", async () => {
    const { record, policy: loaded } = await inForce();
    const policy = { ...loaded, keyDir: opts.keyDir, site: record.site };
    return planJson((await planSite(opts.target, policy)).plan);
  });

  app.post<{ Body: string; Querystring: { dryRun?: string; site?: string } }>(
    "/apply",
    { config: { rateLimit: opts.applyLimit ?? { max: 10, timeWindow: 60_000 } } },
    async (request) => {
      if (typeof request.body !== "string" || request.body.trim() === "") {
        throw new NetpolError(
          "NETPOL_E_PAYLOAD",
          "send the policy in the body, as application/yaml or application/json",
        );
      }
      const loaded = parsePolicy(request.body, "request body");
      const site =
        request.query.site ?? opts.site ?? (await loadInForce(filesOf(opts.target)))?.record.site;
      if (site === undefined)
        throw new NetpolError("NETPOL_E_USAGE", "say which site to apply: ?site=NAME");
      const policy = { ...loaded, keyDir: opts.keyDir, site };
      if (request.query.dryRun === "1")
        return { dryRun: true, plan: planJson((await planSite(opts.target, policy)).plan) };
      const started = process.hrtime.bigint();
      try {
        const result = await applySite(opts.target, policy, `http ${request.ip}`);
        metrics.applies.inc({ result: result.changed ? "changed" : "unchanged" });
        return {
          changed: result.changed,
          plan: planJson(result.plan),
          policy: { hash: result.record.policyHash, appliedAt: result.record.appliedAt },
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

  app.get("/metrics", async (_request, reply) => {
    metrics.observe(await status());
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return app;
}
