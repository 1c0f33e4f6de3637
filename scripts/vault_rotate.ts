/**
 * `deno task vault:rotate [--dry-run]`: re-encrypts every secret under the newest key
 * (ENCRYPTION_MASTER_KEY), decrypting older values with ENCRYPTION_PREVIOUS_KEYS. Prints
 * the counts; exits 1 when any secret could not be decrypted (those rows are untouched).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config.ts";
import { openDatabase } from "../db/mod.ts";
import { newId } from "../db/ids.ts";
import { auditLogs } from "../db/schema.ts";
import { openVault } from "../vault/keys.ts";
import { rotateSecrets } from "../vault/rotate.ts";

const { values } = parseArgs({ args: Deno.args, options: { "dry-run": { type: "boolean" } } });
const dryRun = values["dry-run"] ?? false;
const config = loadConfig();
if (!config.databaseUrl) await Deno.mkdir(config.dataDir, { recursive: true });
const database = await openDatabase({
  url: config.databaseUrl,
  dataDir: config.pgliteDir,
});
try {
  const { vault } = await openVault(database.db, {
    masterKey: config.masterKey,
    previousKeys: config.previousKeys,
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
  });
  const report = await rotateSecrets(database.db, vault, { dryRun });
  const verb = dryRun ? "would be re-encrypted" : "re-encrypted";
  console.log(`Key version ${vault.currentVersion}${dryRun ? " (dry run: nothing written)" : ""}`);
  console.log(`  data sources:     ${report.rows}`);
  console.log(`  ${verb}:${" ".repeat(Math.max(1, 18 - verb.length))}${report.reEncrypted}`);
  console.log(`  already current:  ${report.alreadyCurrent}`);
  console.log(`  failed:           ${report.failed}`);
  for (const failure of report.failures) console.log(`    ${failure}`);
  if (!dryRun) {
    await database.db.insert(auditLogs).values({
      id: newId(),
      userId: null,
      action: "VAULT_ROTATE",
      entityType: "Vault",
      entityId: String(vault.currentVersion),
      metadata: {
        timestamp: new Date().toISOString(),
        outcome: report.failed ? "failure" : "success",
        reEncrypted: report.reEncrypted,
        alreadyCurrent: report.alreadyCurrent,
        failed: report.failed,
      },
    });
  }
  if (report.failed) Deno.exitCode = 1;
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  Deno.exitCode = 1;
} finally {
  await database.close();
}
