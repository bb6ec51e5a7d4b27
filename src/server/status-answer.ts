import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { SiteStatus } from "../status/collect.js";

/** A status as GET /status sends it: its JSON and the entity tag that names it. */
interface Answer {
  readonly body: string;
  readonly etag: string;
}

/**
 * Each status is serialised once, for every request it answers (a busy scraper asks thousands
 * of times a second for the same read), and dropped with it.
 */
const answers = new WeakMap<SiteStatus, Answer>();

function answerOf(status: SiteStatus): Answer {
  let answer = answers.get(status);
  if (!answer) {
    const body = JSON.stringify(status);
    answer = { body, etag: `"${createHash("sha1").update(body).digest("base64url")}"` };
    answers.set(status, answer);
  }
  return answer;
}

/**
 * Sends a status read at `readAt` (ms): its `Age` header says how old it is (it may be served
 * stale while a new one is read), and a client that holds the same answer gets 304.
 */
export function sendStatus(
  request: FastifyRequest,
  reply: FastifyReply,
  status: SiteStatus,
  readAt: number,
  now: number,
): FastifyReply {
  const { body, etag } = answerOf(status);
  reply.header("age", Math.max(0, Math.floor((now - readAt) / 1000))).header("etag", etag);
  const held = request.headers["if-none-match"];
  if (held?.split(",").some((tag) => tag.trim() === etag)) return reply.code(304).send();
  return reply.type("application/json; charset=utf-8").send(body);
}
