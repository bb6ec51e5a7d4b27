import { randomBytes } from "node:crypto";
import { sameSecret } from "../token.js";

/** What a token lets its holder do: everything, or only look. */
export type Role = "admin" | "viewer";

export interface Session {
  readonly id: string;
  readonly role: Role;
  /** Sent back with every change the page asks for (a header or a form field). */
  readonly csrf: string;
  expires: number;
}

export const SESSION_COOKIE = "netpol_session";
/** A session nobody used for this long is gone: the token is asked for again. */
const IDLE_MS = 12 * 60 * 60 * 1000;
/** Logins are rate limited; this caps what a flood of them could hold in memory. */
const MAX_SESSIONS = 1000;

const secret = () => randomBytes(32).toString("base64url");

/**
 * The page's sessions, in memory: a restart logs everyone out, which is what a restart of the
 * router's control endpoint should do. The token is exchanged once for a random session id;
 * the token itself never reaches the browser's storage.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  create(role: Role): Session {
    this.prune();
    if (this.sessions.size >= MAX_SESSIONS) {
      // The oldest goes: Map keeps insertion order.
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const session = { id: secret(), role, csrf: secret(), expires: this.now() + IDLE_MS };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session with this id, its idle time restarted. */
  get(id: string | undefined): Session | undefined {
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expires <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    session.expires = this.now() + IDLE_MS;
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  private prune(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id);
  }
}

/** The session id the browser sent, from a Cookie header. */
export function sessionIdOf(cookieHeader: string | undefined): string | undefined {
  for (const part of (cookieHeader ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * HttpOnly: no script reads it. SameSite=Strict: no other site's page sends it. Secure only
 * over TLS: a browser drops a Secure cookie set over plain HTTP (serve behind a TLS proxy).
 */
export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

export function clearedCookie(): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/** Whether the CSRF token sent with a change is the session's own. */
export function csrfMatches(session: Session, sent: string | undefined): boolean {
  return sent !== undefined && sameSecret(session.csrf, sent);
}
