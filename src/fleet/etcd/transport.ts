import http from "node:http";
import https from "node:https";

/**
 * How netpol reaches etcd: its JSON gateway (`/v3/...`, served by every etcd 3.4 member on its
 * client URLs), over HTTP or HTTPS with a client certificate. Node's own http client, so the
 * shipped bundle needs no gRPC library or .proto files at run time.
 */
export interface EtcdTls {
  /** The CA that signed the members' certificates. */
  readonly ca: Buffer;
  /** This client's certificate and key: the key is a secret, never printed. */
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface EtcdConnection {
  /** Client URLs of the members, e.g. https://192.0.2.10:2379; tried in turn when one fails. */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTls;
  /** etcd authentication: a user and its password (a secret, read from a 0600 file). */
  readonly auth?: { readonly user: string; readonly password: string };
  /** One request's limit; a watch is not limited. */
  readonly timeoutMs?: number;
}

/** A member that answered, with its status and body; or why none did. */
export type Answer =
  | { readonly ok: true; readonly status: number; readonly body: string }
  | { readonly ok: false; readonly reason: string };

export const DEFAULT_TIMEOUT_MS = 5_000;

/** One connection pool per client: requests to a member reuse their sockets. */
export function agentFor(connection: EtcdConnection): http.Agent {
  const options = { keepAlive: true, maxSockets: 16 };
  if (!connection.tls) return new http.Agent(options);
  const { ca, cert, key } = connection.tls;
  return new https.Agent({ ...options, ca, cert, key });
}

export interface PostOptions {
  readonly agent: http.Agent;
  readonly headers: Readonly<Record<string, string>>;
  /** Abort after this long without an answer (a watch: without its first line). */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

/** POSTs `body` to `endpoint` + `path` and resolves with the whole answer (a unary call). */
export function post(
  endpoint: string,
  path: string,
  body: string,
  options: PostOptions,
): Promise<Answer> {
  return new Promise((resolve) => {
    const request = open(endpoint, path, body, options, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (c: Buffer) => chunks.push(c));
      response.on("end", () =>
        resolve({
          ok: true,
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      response.on("error", (err) => resolve({ ok: false, reason: err.message }));
    });
    request.on("error", (err) => resolve({ ok: false, reason: describe(err) }));
  });
}

/**
 * POSTs `body` and hands each line of the streamed answer to `line` as it comes (a watch: the
 * gateway writes one JSON object per line). Resolves when the stream ends or fails.
 */
export function postStream(
  endpoint: string,
  path: string,
  body: string,
  options: PostOptions,
  line: (text: string) => void,
  status: (code: number) => void,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const request = open(endpoint, path, body, options, (response) => {
      // A watch is quiet for as long as nothing changes: only its start has a limit.
      request.setTimeout(0);
      status(response.statusCode ?? 0);
      response.setEncoding("utf8");
      let pending = "";
      response.on("data", (chunk: string) => {
        pending += chunk;
        for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
          const text = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (text) line(text);
        }
      });
      response.on("end", () => {
        if (pending.trim()) line(pending.trim());
        resolve(undefined);
      });
      response.on("error", (err) => resolve(describe(err)));
      response.on("close", () => resolve("the stream closed"));
    });
    request.on("error", (err) => resolve(describe(err)));
  });
}

function open(
  endpoint: string,
  path: string,
  body: string,
  options: PostOptions,
  onResponse: (response: http.IncomingMessage) => void,
): http.ClientRequest {
  const url = new URL(path, endpoint);
  const client = url.protocol === "https:" ? https : http;
  const request = client.request(url, {
    method: "POST",
    agent: options.agent,
    headers: {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      ...options.headers,
    },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  request.setTimeout(options.timeoutMs, () =>
    request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)),
  );
  request.on("response", onResponse);
  request.end(body);
  return request;
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}
