/**
 * Re-encrypts every stored secret under the newest key, one row per transaction. Values
 * already under the newest key are left alone, so running it twice changes nothing. A value
 * that does not decrypt is counted as failed and its row is left untouched.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../db/mod.ts";
import { dataSources } from "../db/schema.ts";
import type { Vault } from "./mod.ts";
import { storedFields } from "./secrets.ts";

export type RotationReport = {
  rows: number;
  reEncrypted: number;
  alreadyCurrent: number;
  failed: number;
  /** Which secrets failed, without their values: `<sourceId>:<field>: reason`. */
  failures: string[];
  dryRun: boolean;
};

export async function rotateSecrets(
  db: Db,
  vault: Vault,
  options: { dryRun?: boolean } = {},
): Promise<RotationReport> {
  const report: RotationReport = {
    rows: 0,
    reEncrypted: 0,
    alreadyCurrent: 0,
    failed: 0,
    failures: [],
    dryRun: options.dryRun ?? false,
  };
  const ids = await db.select({ id: dataSources.id }).from(dataSources).orderBy(dataSources.id);
  for (const { id } of ids) {
    await db.transaction(async (tx) => {
      const [row] = await tx.select().from(dataSources).where(eq(dataSources.id, id)).for("update");
      if (!row) return;
      report.rows++;
      const updated = { password: row.password, apiKey: row.apiKey, secrets: { ...row.secrets } };
      let rowFailed = false;
      let rowChanged = 0;
      for (const [field, envelope] of storedFields(row)) {
        let plaintext: string;
        try {
          plaintext = await vault.decrypt(envelope, { id, field });
        } catch (error) {
          rowFailed = true;
          report.failed++;
          report.failures.push(`${id}:${field}: ${(error as Error).message}`);
          continue;
        }
        if (vault.versionOf(envelope) === vault.currentVersion) {
          report.alreadyCurrent++;
          continue;
        }
        const fresh = await vault.encrypt(plaintext, { id, field });
        if (field === "password") updated.password = fresh;
        else if (field === "apiKey") updated.apiKey = fresh;
        else updated.secrets[field] = fresh;
        rowChanged++;
      }
      // A row with any unreadable secret is not rewritten at all: nothing half-rotated.
      if (rowFailed || rowChanged === 0) return;
      report.reEncrypted += rowChanged;
      if (!report.dryRun) {
        await tx.update(dataSources).set(updated).where(eq(dataSources.id, id));
      }
    });
  }
  return report;
}
