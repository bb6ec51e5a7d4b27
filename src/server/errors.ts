import type { FastifyError, FastifyInstance } from "fastify";
import { type ErrorCode, type ErrorDetails, NetpolError } from "../errors.js";
import type { LocatedDiagnostic } from "../policy/diagnostic.js";
import { formatPath } from "../policy/diagnostic.js";

/** The one shape every error response has. */
export interface ErrorBody {
  readonly error: {
    readonly code: ErrorCode;
    readonly message: string;
    readonly problems?: readonly {
      file: string;
      line: number;
      col: number;
      path: string;
      message: string;
    }[];
    readonly details?: ErrorDetails;
  };
}

export function errorBody(
  code: ErrorCode,
  message: string,
  problems: readonly LocatedDiagnostic[] = [],
): ErrorBody {
  return {
    error: {
      code,
      message,
      ...(problems.length > 0
        ? {
            problems: problems.map((p) => ({
              file: p.file,
              line: p.line,
              col: p.col,
              path: formatPath(p.path),
              message: p.message,
            })),
          }
        : {}),
    },
  };
}

/** A NetpolError as the one error document: the CLI's `--json` and the HTTP answer alike. */
export function errorDocument(err: NetpolError): ErrorBody {
  const body = errorBody(err.code, err.message, err.diagnostics);
  const details = Object.keys(err.details).length > 0 ? { details: err.details } : {};
  return { error: { ...body.error, ...details } };
}

/** Fastify's own client errors, mapped to netpol codes with their real status. */
function clientError(
  bodyLimit: number,
  err: FastifyError,
): { status: number; code: ErrorCode; message: string } | undefined {
  if (err.statusCode === 429)
    return {
      status: 429,
      code: "NETPOL_E_RATE_LIMITED",
      message:
        "too many requests of this kind (applies and dry runs have budgets of their own); wait a minute and retry",
    };
  if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE")
    return {
      status: 413,
      code: "NETPOL_E_PAYLOAD",
      message: `the request body is larger than the ${bodyLimit} bytes this server takes for a policy`,
    };
  if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
    return {
      status: 415,
      code: "NETPOL_E_PAYLOAD",
      message: "send the policy as application/yaml or application/json",
    };
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return { status: err.statusCode, code: "NETPOL_E_PAYLOAD", message: err.message };
  }
  return undefined;
}

export function installErrorHandling(app: FastifyInstance, bodyLimit: number): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof NetpolError) return reply.status(err.httpStatus).send(errorDocument(err));
    const client = clientError(bodyLimit, err);
    if (client) return reply.status(client.status).send(errorBody(client.code, client.message));
    request.log.error({ err }, "internal error");
    return reply
      .status(500)
      .send(errorBody("NETPOL_E_INTERNAL", "internal error; see the server log"));
  });
  app.setNotFoundHandler((_request, reply) =>
    reply.status(404).send(errorBody("NETPOL_E_NOT_FOUND", "no such route")),
  );
}
