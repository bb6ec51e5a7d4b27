import { setTimeout as sleep } from "node:timers/promises";
import { NetpolError } from "../../errors.js";
import {
  type Answer,
  agentFor,
  DEFAULT_TIMEOUT_MS,
  type EtcdConnection,
  post,
  postStream,
} from "./transport.js";

/** A key's value as etcd holds it, decoded: keys and values are UTF-8 text in netpol's use. */
export interface Kv {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  readonly createRevision: number;
  readonly lease?: string;
}

export type Compare =
  | { readonly key: string; readonly target: "MOD" | "CREATE"; readonly revision: number }
  | { readonly key: string; readonly target: "VALUE"; readonly value: string };

export type TxnOp =
  | { readonly put: { readonly key: string; readonly value: string; readonly lease?: string } }
  | { readonly delete: { readonly key: string; readonly prefix?: boolean } }
  | { readonly range: { readonly key: string; readonly prefix?: boolean } };

export interface TxnResult {
  readonly succeeded: boolean;
  readonly revision: number;
  /** The key-values each range op of the branch that ran read, in op order. */
  readonly ranges: readonly (readonly Kv[])[];
}

/** What the gateway says when etcd refuses a call: a gRPC code and message. */
interface GatewayError {
  readonly code: number;
  readonly message: string;
}

const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;
/** etcd's answers that a new token cures: expired, or minted before the auth store changed. */
const STALE_TOKEN =
  /invalid auth token|revision of auth store is old|auth: revision in header is old/;
/** etcd with --client-cert-auth refuses gateway clients whose certificate has a CN (etcd-io/etcd#10392). */
const CN_REFUSED =
  /CommonName of client sending a request against gateway|must have empty CommonName/;
const DENIED = /permission denied|authentication failed|user name is empty|user name not found/;

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const unb64 = (text: string | undefined) => Buffer.from(text ?? "", "base64").toString("utf8");

/** The first key after every key starting with `prefix`: etcd's range_end for a prefix. */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    const byte = bytes[i] ?? 0;
    if (byte < 0xff)
      return Buffer.concat([bytes.subarray(0, i), Buffer.from([byte + 1])]).toString("base64");
  }
  return b64("\0");
}

const rangeOf = (key: string, prefix: boolean | undefined) => ({
  key: b64(key),
  ...(prefix ? { range_end: prefixEnd(key) } : {}),
});

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
  create_revision?: string;
  lease?: string;
}

export function decodeKv(raw: RawKv): Kv {
  return {
    key: unb64(raw.key),
    value: unb64(raw.value),
    modRevision: Number(raw.mod_revision ?? 0),
    createRevision: Number(raw.create_revision ?? 0),
    ...(raw.lease && raw.lease !== "0" ? { lease: raw.lease } : {}),
  };
}

/**
 * One etcd cluster, through its JSON gateway. Each call goes to the member that answered last;
 * one that does not answer, or has no leader, hands the call to the next, until every member
 * was tried. A token that etcd no longer takes is replaced once per call. Errors are
 * NetpolErrors: unreachable, denied (credentials or RBAC), or refused with etcd's reason.
 */
export class Etcd {
  readonly #connection: EtcdConnection;
  readonly #agent;
  readonly #timeoutMs: number;
  #current = 0;
  #token: Promise<string> | undefined;

  constructor(connection: EtcdConnection) {
    if (connection.endpoints.length === 0)
      throw new NetpolError("NETPOL_E_USAGE", "name at least one etcd member: --etcd URL");
    this.#connection = connection;
    this.#agent = agentFor(connection);
    this.#timeoutMs = connection.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  get endpoints(): readonly string[] {
    return this.#connection.endpoints;
  }

  async range(key: string, opts: { prefix?: boolean; revision?: number; keysOnly?: boolean } = {}) {
    const answer = await this.call<{ header?: { revision?: string }; kvs?: RawKv[] }>(
      "/v3/kv/range",
      {
        ...rangeOf(key, opts.prefix),
        ...(opts.revision ? { revision: String(opts.revision) } : {}),
        ...(opts.keysOnly ? { keys_only: true } : {}),
      },
    );
    return {
      revision: Number(answer.header?.revision ?? 0),
      kvs: (answer.kvs ?? []).map(decodeKv),
    };
  }

  async get(key: string): Promise<{ revision: number; kv: Kv | undefined }> {
    const { revision, kvs } = await this.range(key);
    return { revision, kv: kvs[0] };
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const answer = await this.call<{ header?: { revision?: string } }>("/v3/kv/put", {
      key: b64(key),
      value: b64(value),
      ...(lease ? { lease } : {}),
    });
    return Number(answer.header?.revision ?? 0);
  }

  async txn(
    compare: readonly Compare[],
    success: readonly TxnOp[],
    failure: readonly TxnOp[] = [],
  ): Promise<TxnResult> {
    const answer = await this.call<{
      header?: { revision?: string };
      succeeded?: boolean;
      responses?: { response_range?: { kvs?: RawKv[] } }[];
    }>("/v3/kv/txn", {
      compare: compare.map(encodeCompare),
      success: success.map(encodeOp),
      failure: failure.map(encodeOp),
    });
    return {
      succeeded: answer.succeeded === true,
      revision: Number(answer.header?.revision ?? 0),
      ranges: (answer.responses ?? []).flatMap((r) =>
        r.response_range ? [(r.response_range.kvs ?? []).map(decodeKv)] : [],
      ),
    };
  }

  async leaseGrant(ttlSeconds: number): Promise<string> {
    const answer = await this.call<{ ID?: string; error?: string }>("/v3/lease/grant", {
      TTL: ttlSeconds,
    });
    if (!answer.ID) throw this.#failed(`no lease granted: ${answer.error ?? "etcd gave no id"}`);
    return answer.ID;
  }

  /** Renews a lease; the TTL left, 0 when it had expired already. */
  async leaseKeepAlive(id: string): Promise<number> {
    const answer = await this.call<{ result?: { TTL?: string } }>("/v3/lease/keepalive", {
      ID: id,
    });
    return Number(answer.result?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id }).catch(() => undefined);
  }

  /**
   * A unary call. Tries each member once, starting with the one that answered last; waits a
   * little between rounds while the cluster has no leader (an election takes a second or two).
   */
  async call<T>(path: string, body: unknown, deadlineMs = this.#timeoutMs * 3): Promise<T> {
    const text = JSON.stringify(body);
    const giveUp = Date.now() + deadlineMs;
    let renewed = false;
    const reasons: string[] = [];
    for (let attempt = 0; ; attempt++) {
      const endpoint = this.endpoints[this.#current] ?? "";
      const answer = await post(endpoint, path, text, {
        agent: this.#agent,
        headers: await this.#authHeaders(path),
        timeoutMs: this.#timeoutMs,
      });
      const outcome = this.#judge(answer);
      if (outcome.kind === "ok") return outcome.value as T;
      if (outcome.kind === "stale-token" && !renewed) {
        renewed = true;
        this.#token = undefined;
        continue;
      }
      if (outcome.kind === "fatal") throw outcome.error;
      reasons.push(`${endpoint}: ${outcome.reason}`);
      this.#current = (this.#current + 1) % this.endpoints.length;
      if (Date.now() >= giveUp) break;
      if ((attempt + 1) % this.endpoints.length === 0)
        await sleep(Math.min(1_000, 100 * (attempt + 1)));
    }
    throw new NetpolError(
      "NETPOL_E_ETCD_UNREACHABLE",
      `no etcd member answered ${path}: ${reasons.slice(-this.endpoints.length).join("; ")}`,
    );
  }

  /** Streams a watch (see etcd/watch): one member, no retry here; the caller resumes. */
  async stream(
    path: string,
    body: unknown,
    line: (text: string) => void,
    signal: AbortSignal,
  ): Promise<string> {
    const endpoint = this.endpoints[this.#current] ?? "";
    let refused: string | undefined;
    let headers: Record<string, string>;
    try {
      headers = await this.#authHeaders(path);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
    const ended = await postStream(
      endpoint,
      path,
      JSON.stringify(body),
      { agent: this.#agent, headers, timeoutMs: this.#timeoutMs, signal },
      (text) => {
        const error = gatewayError(text);
        if (error) {
          refused = error.message;
          if (STALE_TOKEN.test(error.message) || error.code === UNAUTHENTICATED)
            this.#token = undefined;
          return;
        }
        line(text);
      },
      () => undefined,
    );
    if (signal.aborted) return "cancelled";
    // The next try goes to another member: this one may be the one that went away.
    this.#current = (this.#current + 1) % this.endpoints.length;
    return refused ?? ended ?? "the stream ended";
  }

  close(): void {
    this.#agent.destroy();
  }

  #judge(
    answer: Answer,
  ):
    | { kind: "ok"; value: unknown }
    | { kind: "retry"; reason: string }
    | { kind: "stale-token"; reason: string }
    | { kind: "fatal"; error: NetpolError } {
    if (!answer.ok) return { kind: "retry", reason: answer.reason };
    const error = gatewayError(answer.body);
    if (!error && answer.status >= 200 && answer.status < 300) {
      return { kind: "ok", value: answer.body ? (JSON.parse(answer.body) as unknown) : {} };
    }
    const message = error?.message ?? `HTTP ${answer.status}: ${answer.body.trim().slice(0, 200)}`;
    if (CN_REFUSED.test(message))
      return {
        kind: "fatal",
        error: new NetpolError(
          "NETPOL_E_ETCD_DENIED",
          "etcd refuses a client certificate with a CommonName on the API netpol uses (its JSON gateway): make this client's certificate with an empty CN (e.g. -subj /O=netpol/OU=SITE) and authenticate with --user and --password-file",
        ),
      };
    if (STALE_TOKEN.test(message) || error?.code === UNAUTHENTICATED)
      return { kind: "stale-token", reason: message };
    if (error?.code === UNAVAILABLE || answer.status >= 500)
      return { kind: "retry", reason: message };
    if (DENIED.test(message))
      return {
        kind: "fatal",
        error: new NetpolError(
          "NETPOL_E_ETCD_DENIED",
          `etcd refused ${this.#connection.auth ? `user ${this.#connection.auth.user}` : "this client"}: ${message}`,
        ),
      };
    return { kind: "fatal", error: this.#failed(message) };
  }

  #failed(message: string): NetpolError {
    const hint = /request is too large/.test(message)
      ? "; the policy is larger than etcd takes in one request: start etcd with a larger --max-request-bytes"
      : "";
    return new NetpolError("NETPOL_E_ETCD_FAILED", `etcd refused the request: ${message}${hint}`);
  }

  async #authHeaders(path: string): Promise<Record<string, string>> {
    const auth = this.#connection.auth;
    if (!auth || path === "/v3/auth/authenticate") return {};
    this.#token ??= this.call<{ token?: string }>("/v3/auth/authenticate", {
      name: auth.user,
      password: auth.password,
    }).then((a) => a.token ?? "");
    const token = await this.#token.catch((err: unknown) => {
      this.#token = undefined;
      throw err;
    });
    return token ? { authorization: token } : {};
  }
}

function gatewayError(text: string): GatewayError | undefined {
  if (!text.startsWith("{") || !text.includes('"error"')) return undefined;
  try {
    const parsed = JSON.parse(text) as { error?: unknown; code?: unknown; message?: unknown };
    if (parsed.error === undefined || typeof parsed.error === "object") return undefined;
    return {
      code: typeof parsed.code === "number" ? parsed.code : 0,
      message: String(parsed.message ?? parsed.error),
    };
  } catch {
    return undefined;
  }
}

function encodeCompare(c: Compare) {
  const base = { key: b64(c.key), result: "EQUAL" };
  if (c.target === "VALUE") return { ...base, target: "VALUE", value: b64(c.value) };
  return c.target === "MOD"
    ? { ...base, target: "MOD", mod_revision: String(c.revision) }
    : { ...base, target: "CREATE", create_revision: String(c.revision) };
}

function encodeOp(op: TxnOp) {
  if ("put" in op) {
    const { key, value, lease } = op.put;
    return { request_put: { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) } };
  }
  if ("delete" in op) return { request_delete_range: rangeOf(op.delete.key, op.delete.prefix) };
  return { request_range: rangeOf(op.range.key, op.range.prefix) };
}
