import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { NetpolError } from "../errors.js";
import {
  csrfMatches,
  type Role,
  type Session,
  type SessionStore,
  sessionIdOf,
} from "./dashboard/session.js";
import { errorBody } from "./errors.js";
import { bearerOf, secretMatcher } from "./token.js";

/** Who sent a request: a token's holder (API clients), or the page's session. */
export interface Principal {
  readonly role: Role;
  readonly session?: Session;
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface AuthOptions {
  readonly token: string;
  /** A second token that may read everything and change nothing. */
  readonly viewerToken?: string;
  readonly sessions: SessionStore;
  /** What `GET /` answers, with 401, to a browser that has no session: the login form. */
  readonly loginPage: () => Promise<string>;
}

/** Routes anyone may ask for: liveness, the login form, and the page's own script and style. */
const isPublic = (url: string) => url === "/healthz" || url === "/login" || url.startsWith("/ui/");

/** The changes the page asks for with its session; anything else needs the token. */
const PAGE_ACTIONS = new Set(["/confirm", "/revert", "/reapply", "/logout"]);

/** The role each token gives, its secrets' digests made once (every request is checked). */
export function rolesOf(
  opts: Pick<AuthOptions, "token" | "viewerToken">,
): (token: string) => Role | undefined {
  const admin = secretMatcher(opts.token);
  const viewer = opts.viewerToken === undefined ? undefined : secretMatcher(opts.viewerToken);
  return (token) => (admin(token) ? "admin" : viewer?.(token) ? "viewer" : undefined);
}

export function roleOf(
  opts: Pick<AuthOptions, "token" | "viewerToken">,
  token: string,
): Role | undefined {
  return rolesOf(opts)(token);
}

/**
 * Whether a browser sent this from the page itself: Sec-Fetch-Site and Origin, where the
 * browser sends them, name this server. A client that sends neither (curl) still needs the
 * session's CSRF token, which no other site can read.
 */
export function sameOrigin(request: FastifyRequest): boolean {
  const site = request.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin") return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    // Both through URL: a default port is dropped from one as from the other.
    return new URL(origin).host === new URL(`${request.protocol}://${request.headers.host}`).host;
  } catch {
    // "null": a sandboxed frame, a file, a redirect from elsewhere.
    return false;
  }
}

function csrfSent(request: FastifyRequest): string | undefined {
  const header = request.headers["x-csrf-token"];
  if (typeof header === "string") return header;
  const body = request.body as { csrf?: unknown } | undefined;
  return typeof body?.csrf === "string" ? body.csrf : undefined;
}

const forbidden = (message: string) => new NetpolError("NETPOL_E_FORBIDDEN", message);

/**
 * Every route but the public ones needs a principal: the token (or the viewer's) as a bearer,
 * or the session cookie the login form gave for it. Changes need the full token's role and,
 * from the page, the session's CSRF token and a same-origin request.
 */
export function installAuth(app: FastifyInstance, opts: AuthOptions): void {
  app.decorateRequest("principal", null);
  const roleOfToken = rolesOf(opts);

  app.addHook("onRequest", async (request, reply: FastifyReply) => {
    const path = request.url.split("?")[0] ?? "";
    if (isPublic(path)) return;
    // A bearer token, right or wrong, is what counts when one is sent.
    const bearer = bearerOf(request.headers.authorization);
    const role = bearer ? roleOfToken(bearer) : undefined;
    const session = bearer ? undefined : opts.sessions.get(sessionIdOf(request.headers.cookie));
    if (role) request.principal = { role };
    else if (session) request.principal = { role: session.role, session };
    else if (request.method === "GET" && path === "/" && !bearer)
      return reply
        .status(401)
        .type("text/html; charset=utf-8")
        .send(await opts.loginPage());
    else
      return reply.status(401).send(errorBody("NETPOL_E_UNAUTHORIZED", "missing or wrong token"));
  });

  // After the body is read: a form's CSRF token travels in it.
  app.addHook("preHandler", async (request) => {
    const who = request.principal;
    if (!who || request.method === "GET" || request.method === "HEAD") return;
    if (who.role !== "admin")
      throw forbidden("this token is read-only: it shows the state and changes nothing");
    if (!who.session) return;
    if (!PAGE_ACTIONS.has(request.routeOptions.url ?? ""))
      throw forbidden(
        "the page's session confirms, reverts and re-applies; send the token for this",
      );
    if (!sameOrigin(request)) throw forbidden("a request from another site is refused");
    if (!csrfMatches(who.session, csrfSent(request)))
      throw forbidden("missing or wrong CSRF token; reload the page");
  });
}
