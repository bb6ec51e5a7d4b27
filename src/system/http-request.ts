import type { Runner } from "./runner.js";

/**
 * One HTTP request made from the runner's namespace. Every request netpol makes on behalf of
 * a target (another site's `netpol serve`, Caddy's admin API) leaves from that target's
 * namespace: a request made by this process would leave from the CLI's own, and could go out
 * of the machine by its default route. So a small node process makes it, run through the
 * Runner (`ip netns exec NS node -e ...` with --netns). The request comes on stdin, as JSON,
 * so a bearer token never appears in argv; the answer is one JSON line on stdout.
 */

export interface HttpRequest {
  readonly method: "GET" | "POST";
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Given up after this long in all, the answer included. */
  readonly timeoutMs: number;
  /** The apply step this request belongs to, for a failure's message. */
  readonly step?: string;
  /** The request's source address (the leak canary's: the router's address in a network). */
  readonly localAddress?: string;
}

/** What came back; `status` 0 and `error` when nothing answered. */
export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  /** The ETag, from the trailers (Caddy 2.6 sends it as one) or the headers. */
  readonly etag?: string;
  readonly error?: string;
}

// stdin: {method, url, headers, body, timeoutMs, localAddress}; stdout: {status, body, etag} or {status: 0, error}.
export const HTTP_REQUEST_SCRIPT = `let i="",done=false;const out=x=>{if(!done){done=true;process.stdout.write(JSON.stringify(x))}};process.stdin.on("data",d=>i+=d).on("end",()=>{const o=JSON.parse(i);const u=new URL(o.url);const q=require(u.protocol==="https:"?"https":"http").request(u,{method:o.method,headers:o.headers,localAddress:o.localAddress},r=>{let b="";r.setEncoding("utf8").on("data",d=>b+=d).on("end",()=>out({status:r.statusCode,etag:r.trailers.etag??r.headers.etag,body:b})).on("error",e=>out({status:0,body:"",error:e.code??e.message}))});const t=setTimeout(()=>q.destroy(new Error("no answer within "+o.timeoutMs/1000+" s")),o.timeoutMs);q.on("error",e=>out({status:0,body:"",error:e.message})).on("close",()=>clearTimeout(t));q.end(o.body)})`;

export async function httpRequest(runner: Runner, request: HttpRequest): Promise<HttpAnswer> {
  const { step, ...sent } = request;
  const r = await runner.run(process.execPath, ["-e", HTTP_REQUEST_SCRIPT], {
    input: JSON.stringify(sent),
    ...(step !== undefined ? { step } : {}),
  });
  try {
    const answer = JSON.parse(r.stdout) as HttpAnswer;
    if (typeof answer.status === "number" && typeof answer.body === "string") return answer;
  } catch {
    // Said below.
  }
  return { status: 0, body: "", error: "the request process printed no answer" };
}
