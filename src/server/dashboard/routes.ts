import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { NetpolError } from "../../errors.js";
import { roleOf, sameOrigin } from "../auth.js";
import { pageAssets } from "./assets.js";
import type { DashboardFeed } from "./feed.js";
import { dashboardPage, loginPage } from "./page.js";
import { clearedCookie, type SessionStore, sessionCookie, sessionIdOf } from "./session.js";
import { RegionStreams } from "./stream.js";

/**
 * Every answer says: run only this server's own script and style, load nothing from anywhere
 * else, post forms only here, never be framed, send no referrer elsewhere, sniff no types.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  // Not no-referrer: under it a browser sends `Origin: null` with the page's own form posts.
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cross-origin-resource-policy": "same-origin",
};

export interface DashboardOptions {
  readonly feed: DashboardFeed;
  readonly sessions: SessionStore;
  readonly token: string;
  readonly viewerToken?: string;
  /** Logins a client may try per window: the token is the only thing between it and the page. */
  readonly loginLimit: { readonly max: number; readonly timeWindow: number };
}

const html = (reply: FastifyReply, status: number, body: string) =>
  reply
    .status(status)
    .type("text/html; charset=utf-8")
    .header("cache-control", "no-store")
    .send(body);

const overTls = (request: FastifyRequest) => request.protocol === "https";

/** The page: `/`, its login and logout, its event stream, and its own script and stylesheet. */
export async function registerDashboard(
  app: FastifyInstance,
  opts: DashboardOptions,
): Promise<void> {
  const streams = new RegionStreams(opts.feed);

  app.addHook("onSend", async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  app.addHook("preClose", async () => {
    streams.closeAll();
    opts.feed.close();
  });

  app.get<{ Params: { file: string } }>("/ui/:file", async (request, reply) => {
    const asset = (await pageAssets()).byPath.get(`/ui/${request.params.file}`);
    if (!asset) throw new NetpolError("NETPOL_E_NOT_FOUND", "no such file");
    // Its name changes with its content: it can be kept for good.
    return reply
      .type(asset.type)
      .header("cache-control", "public, max-age=31536000, immutable")
      .send(asset.body);
  });

  app.get("/", async (request, reply) => {
    const who = request.principal;
    if (!who) throw new NetpolError("NETPOL_E_UNAUTHORIZED", "missing or wrong token");
    const [snapshot, assets] = await Promise.all([opts.feed.current(), pageAssets()]);
    const viewer = { role: who.role, csrf: who.session?.csrf ?? "" };
    return html(reply, 200, dashboardPage(snapshot, viewer, assets.paths));
  });

  app.get("/login", async (request, reply) => {
    if (opts.sessions.get(sessionIdOf(request.headers.cookie))) return reply.redirect("/", 303);
    return html(reply, 200, loginPage((await pageAssets()).paths));
  });

  app.post<{ Body: { token?: unknown } | undefined }>(
    "/login",
    { config: { rateLimit: opts.loginLimit } },
    async (request, reply) => {
      const paths = (await pageAssets()).paths;
      if (!sameOrigin(request))
        return html(reply, 403, loginPage(paths, "a login from another site is refused"));
      const sent = request.body?.token;
      const role = typeof sent === "string" ? roleOf(opts, sent.trim()) : undefined;
      if (!role) return html(reply, 401, loginPage(paths, "wrong token"));
      const session = opts.sessions.create(role);
      return reply
        .header("set-cookie", sessionCookie(session.id, overTls(request)))
        .redirect("/", 303);
    },
  );

  app.post("/logout", async (request, reply) => {
    const id = request.principal?.session?.id;
    if (id !== undefined) opts.sessions.delete(id);
    return reply.header("set-cookie", clearedCookie()).redirect("/login", 303);
  });

  app.get("/events", async (request, reply) => {
    const who = request.principal;
    if (!who) throw new NetpolError("NETPOL_E_UNAUTHORIZED", "missing or wrong token");
    const first = await opts.feed.current();
    reply.hijack();
    streams.open(reply.raw, who.role, { ...SECURITY_HEADERS }, first);
  });
}
