import { NetpolError } from "../../errors.js";
import type { CaddyLive, CaddyWrite } from "../../plan/live.js";
import type { Runner } from "../runner.js";

/**
 * Caddy's admin API listens on the localhost of the namespace Caddy runs in, so each request is
 * made by a small node process run through the Runner (`ip netns exec NS node ...` with --netns),
 * which a request from this process could not do. Node, not curl: Caddy 2.6 sends the config's
 * ETag as an HTTP trailer, which node hands over as such.
 */

/** `host:port` of the admin listener → the base URL; anything else is refused, never spliced into a URL. */
export function adminUrl(admin: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(admin))
    throw new NetpolError(
      "NETPOL_E_USAGE",
      `proxy.adminListen ${JSON.stringify(admin)} is not host:port; netpol talks to Caddy's admin API over TCP (e.g. localhost:2019)`,
    );
  return `http://${admin}`;
}

// argv: method, url, If-Match ("" for none); stdin: the body to send ("" for none).
// stdout: one JSON line {status, etag, body}, or {status: 0, error} when nothing answered.
const REQUEST = `const [m,u,e]=process.argv.slice(1);let i="";process.stdin.on("data",d=>i+=d).on("end",()=>{const q=require("http").request(u,{method:m,timeout:10000,headers:{...(i?{"Content-Type":"application/json"}:{}),...(e?{"If-Match":e}:{})}},r=>{let b="";r.setEncoding("utf8").on("data",d=>b+=d).on("end",()=>process.stdout.write(JSON.stringify({status:r.statusCode,etag:r.trailers.etag??r.headers.etag,body:b})))});q.on("timeout",()=>q.destroy(new Error("no answer within 10 s"))).on("error",x=>process.stdout.write(JSON.stringify({status:0,body:"",error:x.code??x.message})));q.end(i||undefined)})`;

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly etag?: string;
  readonly error?: string;
}

async function request(
  runner: Runner,
  admin: string,
  method: "GET" | "POST",
  path: string,
  options: { body?: string; etag?: string; step?: string } = {},
): Promise<Answer> {
  const r = await runner.run(
    process.execPath,
    ["-e", REQUEST, method, `${adminUrl(admin)}${path}`, options.etag ?? ""],
    {
      input: options.body ?? "",
      ...(options.step !== undefined ? { step: options.step } : {}),
    },
  );
  return JSON.parse(r.stdout) as Answer;
}

/** Caddy's own words from an error answer (`{"error": "..."}`), or the raw body. */
function caddyError({ body, error }: Answer): string {
  if (error !== undefined) return `no answer (${error})`;
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // Not JSON: say what came back.
  }
  return body.trim() || "(empty answer)";
}

export async function readCaddy(runner: Runner, admin: string): Promise<CaddyLive> {
  const r = await request(runner, admin, "GET", "/config/");
  if (r.status !== 200 || r.etag === undefined)
    return { reachable: false, error: `GET /config/: ${caddyError(r)}` };
  return { reachable: true, config: JSON.parse(r.body) as unknown, etag: r.etag };
}

/**
 * Replaces the whole config in one request. Caddy swaps configs atomically (the old one keeps
 * serving if the new one fails to start). POST /load would ignore If-Match, so the write goes to
 * /config/, where a config changed by someone else since `etag` is refused with 412.
 */
export async function writeCaddy(runner: Runner, write: CaddyWrite, step: string): Promise<void> {
  const r = await request(runner, write.admin, "POST", "/config/", {
    body: JSON.stringify(write.config),
    etag: write.etag,
    step,
  });
  if (r.status === 200) return;
  const said = caddyError(r);
  throw new NetpolError(
    "NETPOL_E_TOOL_FAILED",
    r.status === 412
      ? `Caddy's config was changed by someone else while netpol planned (${said}); nothing was written, run again`
      : r.status === 0
        ? `Caddy's admin API at ${write.admin} did not answer during ${step}: ${said}`
        : `Caddy refused the new config during ${step} (HTTP ${r.status}): ${said}`,
  );
}

/** One upstream as Caddy's reverse proxy sees it. */
export interface CaddyUpstream {
  readonly address: string;
  readonly fails: number;
  readonly requests: number;
}

/** GET /reverse_proxy/upstreams: the proxy's own view of its upstreams (failures it counted). */
export async function readUpstreams(
  runner: Runner,
  admin: string,
): Promise<readonly CaddyUpstream[] | undefined> {
  const r = await request(runner, admin, "GET", "/reverse_proxy/upstreams");
  if (r.status !== 200) return undefined;
  const list = JSON.parse(r.body) as { address: string; fails?: number; num_requests?: number }[];
  return list.map((u) => ({
    address: u.address,
    fails: u.fails ?? 0,
    requests: u.num_requests ?? 0,
  }));
}
