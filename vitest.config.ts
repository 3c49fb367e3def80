import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration files share one broker on a small machine: one file at a time.
    fileParallelism: false,
    // CI asks for a machine-readable report beside the console one (IPT_TEST_REPORT=path).
    reporters: process.env.IPT_TEST_REPORT ? ['default', 'json'] : ['default'],
    outputFile: process.env.IPT_TEST_REPORT ? { json: process.env.IPT_TEST_REPORT } : undefined,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // The published package: packed, installed into an empty project from the registry, run under plain node.
      { test: { name: 'package', include: ['test/package/**/*.test.ts'], testTimeout: 900_000, hookTimeout: 900_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
