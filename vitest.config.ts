import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Namespace labs share one kernel and /var/run/wireguard: run files one at a time. The
    // unit layer touches no kernel (tests/support/layers.ts), so its files may run side by side.
    fileParallelism: process.env.NETPOL_TEST_LAYER === "unit",
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
