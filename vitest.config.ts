import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

const unit = process.env.NETPOL_TEST_LAYER === "unit";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Namespace labs share one kernel and /var/run/wireguard: run files one at a time. The
    // unit layer touches no kernel (test/support/layers.ts), so its files run side by side,
    // one worker per CPU (vitest's default leaves one CPU idle), in workers that keep their
    // imports between files: no test relies on fresh module state, and re-importing zod,
    // fastify and the core for each file cost more than the tests themselves.
    fileParallelism: unit,
    ...(unit ? { maxWorkers: Math.max(2, availableParallelism()), isolate: false } : {}),
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
