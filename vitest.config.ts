import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// One directory per run where tests record the secrets they used and what the app wrote;
// the summary reporter scans it at the end (tests/helpers/secret_scan.ts). Workers inherit
// the variable because they start after this file is loaded.
process.env.DAFEL_SECRET_SCAN_DIR ??= mkdtempSync(join(tmpdir(), "dafel-secret-scan-"));

// API tests run twice: against embedded PGlite and against the real PostgreSQL.
const apiTests = ["tests/api/**/*.test.{ts,tsx}"];

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "hono/jsx" },
  test: {
    globalSetup: ["./tests/global_setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 10_000,
    reporters: ["default", "./tests/summary_reporter.ts"],
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["tests/**/*.test.{ts,tsx}"],
          exclude: [...apiTests, "tests/browser/**"],
        },
      },
      {
        extends: true,
        test: { name: "api-pglite", include: apiTests, env: { TEST_DATABASE: "pglite" } },
      },
      {
        extends: true,
        test: { name: "api-postgres", include: apiTests, env: { TEST_DATABASE: "postgres" } },
      },
      {
        // The real app in Debian's Chromium (playwright-core): slower to start than the rest.
        extends: true,
        test: {
          name: "browser",
          include: ["tests/browser/**/*.test.{ts,tsx}"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
