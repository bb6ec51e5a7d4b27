import { describe, expect, it } from "vitest";
import { runRestore } from "../../../src/apply/rollback/restore.js";
import { HTTP_REQUEST_SCRIPT } from "../../../src/system/http-request.js";
import { createRunner, type Runner, withRun } from "../../../src/system/runner.js";

// The Caddy part of a rollback against a fake admin API: what it reads, what it writes back,
// and what it says when the apply's own write went unanswered (Caddy may still carry it out).
const BEFORE = { apps: { http: { servers: { mine: { listen: [":80"], routes: [] } } } } };
const AFTER = {
  apps: {
    http: {
      servers: {
        mine: { listen: [":80"], routes: [{ "@id": "netpol-blog", match: [{ host: ["b.org"] }] }] },
      },
    },
  },
};

/** A Caddy admin API that runs `config` and records every write. */
function fakeCaddy(config: unknown): { runner: Runner; posts: unknown[] } {
  const posts: unknown[] = [];
  const runner = withRun(createRunner(), async (tool, args, options) => {
    if (tool !== process.execPath || args[1] !== HTTP_REQUEST_SCRIPT)
      throw new Error(`unexpected command ${tool} ${args.join(" ")}`);
    const request = JSON.parse(options?.input ?? "{}");
    if (request.method === "POST") posts.push(JSON.parse(request.body));
    const answer =
      request.method === "GET"
        ? { status: 200, etag: '"/config/ 1"', body: JSON.stringify(config) }
        : { status: 200, body: "" };
    return { stdout: JSON.stringify(answer), stderr: "" };
  });
  return { runner, posts };
}

const script = (unanswered: boolean) => ({
  createWireguard: [],
  links: [],
  wireguard: [],
  nft: undefined,
  v4: [],
  v6: [],
  sysctls: [],
  deleteLinks: [],
  proxy: {
    admin: "localhost:2019",
    config: JSON.stringify(BEFORE),
    ...(unanswered ? { unanswered: true as const } : {}),
  },
});

describe("the rollback of Caddy's config", () => {
  it("says the proxy's state is unknown when the apply's write went unanswered and Caddy still runs the config from before", async () => {
    const caddy = fakeCaddy(BEFORE);
    const failures = await runRestore(caddy.runner, script(true), "/nonexistent");
    expect(failures).toEqual([
      expect.stringMatching(
        /^Caddy config: the proxy's state is unknown: Caddy at localhost:2019 still runs the config from before the apply, but never answered its write/,
      ),
    ]);
    expect(caddy.posts).toEqual([]);
  });

  it("puts the config from before back when the unanswered write already landed", async () => {
    const caddy = fakeCaddy(AFTER);
    expect(await runRestore(caddy.runner, script(true), "/nonexistent")).toEqual([]);
    expect(caddy.posts).toEqual([BEFORE]);
  });

  it("leaves a Caddy that refused the write (an answer) as it is", async () => {
    const caddy = fakeCaddy(BEFORE);
    expect(await runRestore(caddy.runner, script(false), "/nonexistent")).toEqual([]);
    expect(caddy.posts).toEqual([]);
  });
});
