/** Reading data sources for a caller, and the sanitized shape every response uses. */
import { eq } from "drizzle-orm";
import { isId } from "./ids.ts";
import type { Db } from "./mod.ts";
import { type DataSource, dataSources, type Role } from "./schema.ts";
import { secretsSet } from "../vault/secrets.ts";

/** A data source as clients see it: no secret, not even encrypted; `secretsSet` names them. */
export type SanitizedSource = Omit<DataSource, "password" | "apiKey" | "secrets"> & {
  secretsSet: string[];
};

export function sanitize(row: DataSource): SanitizedSource {
  const { password: _password, apiKey: _apiKey, secrets: _secrets, ...visible } = row;
  return { ...visible, secretsSet: secretsSet(row) };
}

export type Access =
  | { ok: true; source: DataSource }
  | { ok: false; reason: "not_found" | "forbidden" };

/** A source the user may see: its own, or any for an ADMIN. */
export async function findSourceFor(
  db: Db,
  user: { id: string; role: Role },
  id: string,
): Promise<Access> {
  if (!isId(id)) return { ok: false, reason: "not_found" };
  const [source] = await db.select().from(dataSources).where(eq(dataSources.id, id));
  if (!source) return { ok: false, reason: "not_found" };
  if (user.role !== "ADMIN" && source.createdById !== user.id) {
    return { ok: false, reason: "forbidden" };
  }
  return { ok: true, source };
}
