/**
 * Ends the run with the secret scan (every secret a test sent, searched for in every
 * response, page, log line and database row the app wrote) and then one line CI can read:
 * "N passed, N failed". The scan counts as one test.
 */
import { rmSync } from "node:fs";
import type { Reporter, TestModule } from "vitest/node";
import { scanForSecrets } from "./helpers/secret_scan.ts";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>) {
    let passed = 0;
    let failed = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
      }
      if (module.state() === "failed" && module.children.size === 0) failed++;
    }
    const dir = process.env.DAFEL_SECRET_SCAN_DIR;
    if (dir && testModules.length > 0) {
      const scan = scanForSecrets(dir);
      const kib = (n: number) => `${Math.round(n / 1024)} KiB`;
      console.log(
        `secret scan: ${scan.secrets} secrets searched in ${
          kib(scan.bytes.response)
        } of responses, ` +
          `${kib(scan.bytes.page)} of pages, ${kib(scan.bytes.log)} of logs, ` +
          `${kib(scan.bytes.database)} of database rows: ${scan.hits.length} found`,
      );
      for (const hit of scan.hits.slice(0, 20)) {
        console.log(`  secret ${hit.secret} in ${hit.kind}: …${hit.context}`);
      }
      if (scan.hits.length === 0 && scan.secrets > 0) passed++;
      else if (scan.hits.length > 0) {
        failed++;
        process.exitCode = 1;
      }
      rmSync(dir, { recursive: true, force: true });
    }
    console.log(`${passed} passed, ${failed} failed`);
  }
}
