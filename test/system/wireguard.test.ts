import { afterAll, beforeAll, expect, it } from "vitest";
import { stopWireguardGoByName } from "../../src/lab/processes.js";
import { createRunner } from "../../src/system/runner.js";
import { createWireguardLink } from "../../src/system/wireguard.js";
import { describeLive } from "../support/layers.js";
import { createNetns, type Netns, startWireguardGo, uniqueSuffix } from "../support/netns.js";

// wireguard-go's control sockets are machine-wide: a second interface of the same name, in
// another namespace, cannot start. It logs why on stdout, after a banner on stderr.
describeLive("wireguard-go that cannot start", () => {
  let first: Netns;
  let second: Netns;
  const name = `wq${uniqueSuffix()}`;

  beforeAll(async () => {
    first = await createNetns("npwg1");
    second = await createNetns("npwg2");
    await startWireguardGo(first, name);
  });
  afterAll(async () => {
    await first?.destroy();
    await second?.destroy();
    await stopWireguardGoByName([name]);
  });

  it("says wireguard-go's own error and what to do, not its banner", async () => {
    const err = await createWireguardLink(createRunner(second.name), name, "links").catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "NETPOL_E_TOOL_FAILED" });
    const message = String((err as Error).message);
    expect(message).toContain("UAPI listen error: unix socket in use");
    expect(message).toContain(`another WireGuard interface named ${name} runs on this machine`);
    expect(message).not.toContain("not required");
  });
});
