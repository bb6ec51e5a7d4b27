import { Worker } from "node:worker_threads";
import type { SiteState } from "../compile/desired.js";
import { type ErrorCode, NetpolError } from "../errors.js";
import type { LocatedDiagnostic } from "../policy/diagnostic.js";

export interface ValidateRequest {
  readonly id: number;
  readonly text: string;
  readonly file: string;
  /** The site to compile for. */
  readonly site: string;
}

export type ValidateReply =
  | { readonly id: number; readonly ok: true; readonly hash: string; readonly desired: SiteState }
  | {
      readonly id: number;
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      readonly diagnostics: readonly LocatedDiagnostic[];
    }
  | { readonly id: number; readonly ok: false; readonly bug: string };

/**
 * A valid policy compiled for one site. The intent stays in the worker: copying it back costs
 * the event loop more than the compiled state the caller needs.
 */
export interface Validated {
  readonly hash: string;
  readonly text: string;
  readonly desired: SiteState;
}

/** A worker's heap cap: a hostile policy that needs more fails alone, not the server. */
const WORKER_HEAP_MB = 512;

/**
 * The worker thread. Run from TypeScript sources (tests, tsx), it registers tsx's loader
 * first: a worker does not inherit the loader hooks of the thread that starts it.
 */
function spawn(heapMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: heapMb };
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./validate-worker.js", import.meta.url), { resourceLimits });
  }
  const entry = JSON.stringify(new URL("./validate-worker.ts", import.meta.url).href);
  const code = `import("tsx/esm/api").then(({ register }) => { register(); return import(${entry}); });`;
  return new Worker(code, { eval: true, resourceLimits });
}

/**
 * Runs policy validation (and compilation) in one worker thread, one request at a time, so the
 * event loop keeps answering. The worker starts on first use and again after it dies.
 */
export class Validator {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: Validated) => void; reject: (e: unknown) => void; text: string }
  >();

  async validate(text: string, file: string, site: string): Promise<Validated> {
    const worker = this.start();
    const id = this.nextId++;
    const request: ValidateRequest = { id, text, file, site };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, text });
      worker.postMessage(request);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = spawn(WORKER_HEAP_MB);
    worker.unref();
    worker.on("message", (reply: ValidateReply) => this.settle(reply));
    worker.on("error", (err) => this.fail(worker, err));
    worker.on("exit", () => this.fail(worker, new Error("the validation worker exited")));
    this.worker = worker;
    return worker;
  }

  private settle(reply: ValidateReply) {
    const waiting = this.pending.get(reply.id);
    if (!waiting) return;
    this.pending.delete(reply.id);
    if (reply.ok) {
      waiting.resolve({ hash: reply.hash, text: waiting.text, desired: reply.desired });
    } else if ("bug" in reply) {
      waiting.reject(new Error(`validation failed unexpectedly: ${reply.bug}`));
    } else {
      waiting.reject(new NetpolError(reply.code, reply.message, reply.diagnostics));
    }
  }

  /** A worker that died (out of its heap, say) fails what it had; the next request starts anew. */
  private fail(worker: Worker, err: Error) {
    if (this.worker === worker) this.worker = undefined;
    const heap = (err as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY";
    for (const [id, waiting] of this.pending) {
      this.pending.delete(id);
      waiting.reject(
        heap
          ? new NetpolError(
              "NETPOL_E_POLICY_INVALID",
              `the policy needs more than ${WORKER_HEAP_MB} MB to validate; split it or simplify it`,
            )
          : err,
      );
    }
  }
}
