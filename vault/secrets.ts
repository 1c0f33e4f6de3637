/**
 * A data source's secrets as stored: `password` and `apiKey` in the seed's columns, every
 * other secret field in the `secrets` column (field → envelope). Header values marked
 * secret are fields named `headers.<name>`. Each envelope is bound to `<id>:<field>`.
 */
import type { Vault } from "./mod.ts";

export type SecretValues = Record<string, unknown>;

export type SealedSecrets = {
  password: string | null;
  apiKey: string | null;
  secrets: Record<string, string>;
};

type StoredSecrets = { id: string } & SealedSecrets;

const COLUMN_FIELDS = new Set(["password", "apiKey"]);

/** Flattens a secrets object to field → plaintext (`headers.Authorization` for header values). */
export function flattenSecrets(values: SecretValues): Map<string, string> {
  const fields = new Map<string, string>();
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === null) continue;
    if (typeof value === "string") {
      fields.set(key, value);
    } else if (typeof value === "object") {
      for (const [name, inner] of Object.entries(value as Record<string, unknown>)) {
        if (typeof inner === "string") fields.set(`${key}.${name}`, inner);
      }
    }
  }
  return fields;
}

function unflatten(fields: Map<string, string>): SecretValues {
  const values: Record<string, unknown> = {};
  for (const [field, value] of fields) {
    const dot = field.indexOf(".");
    if (dot === -1) {
      values[field] = value;
    } else {
      const group = field.slice(0, dot);
      const inner = (values[group] ??= {}) as Record<string, string>;
      inner[field.slice(dot + 1)] = value;
    }
  }
  return values;
}

/** Encrypts every secret of a source for storage. */
export async function sealSecrets(
  vault: Vault,
  id: string,
  values: SecretValues,
): Promise<SealedSecrets> {
  const sealed: SealedSecrets = { password: null, apiKey: null, secrets: {} };
  for (const [field, plaintext] of flattenSecrets(values)) {
    const envelope = await vault.encrypt(plaintext, { id, field });
    if (field === "password") sealed.password = envelope;
    else if (field === "apiKey") sealed.apiKey = envelope;
    else sealed.secrets[field] = envelope;
  }
  return sealed;
}

/** Every stored envelope of a row, by field. */
export function storedFields(row: StoredSecrets): Map<string, string> {
  const fields = new Map<string, string>();
  if (row.password) fields.set("password", row.password);
  if (row.apiKey) fields.set("apiKey", row.apiKey);
  for (const [field, envelope] of Object.entries(row.secrets ?? {})) {
    if (!COLUMN_FIELDS.has(field)) fields.set(field, envelope);
  }
  return fields;
}

/** Decrypts a row's secrets, just before a connector needs them. Throws VaultError. */
export async function openSecrets(vault: Vault, row: StoredSecrets): Promise<SecretValues> {
  const plain = new Map<string, string>();
  for (const [field, envelope] of storedFields(row)) {
    plain.set(field, await vault.decrypt(envelope, { id: row.id, field }));
  }
  return unflatten(plain);
}

/** Names of the secret fields a row has stored (what a client may know). */
export function secretsSet(row: StoredSecrets): string[] {
  return [...storedFields(row).keys()];
}
