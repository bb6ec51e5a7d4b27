import { parentPort } from "node:worker_threads";
import { compileSite } from "../compile/compile.js";
import { NetpolError } from "../errors.js";
import { IncrementalPolicy } from "../policy/incremental/policy.js";
import type { ValidateReply, ValidateRequest } from "./validator.js";

/**
 * The server's policy reader, in a worker thread: parsing, validating and compiling the
 * largest policy takes long enough to stall every other request (and /healthz) if it ran on
 * the event loop.
 */
const port = parentPort;
if (!port) throw new Error("validate-worker runs as a worker thread");
/** Each text read from the last valid one: a policy posted again with one entry changed reads that entry. */
const reader = new IncrementalPolicy();

port.on("message", ({ id, text, file, site }: ValidateRequest) => {
  let reply: ValidateReply;
  try {
    const { intent, hash } = reader.load(text, file);
    reply = { id, ok: true, hash, desired: reader.compiled(site) ?? compileSite(intent, site) };
  } catch (err) {
    reply =
      err instanceof NetpolError
        ? { id, ok: false, code: err.code, message: err.message, diagnostics: err.diagnostics }
        : { id, ok: false, bug: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  port.postMessage(reply);
});
