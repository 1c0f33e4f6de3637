/**
 * Key rules at start: ENCRYPTION_MASTER_KEY when given; in embedded mode without one, a key
 * generated once into DATA_DIR/master.key (mode 0600); with DATABASE_URL and no key, refuse.
 * Then the keyring is checked against the canaries stored in the database.
 */
import { eq } from "drizzle-orm";
import type { Db } from "../db/mod.ts";
import { vaultCanaries } from "../db/schema.ts";
import {
  createVault,
  generateKeyHex,
  type Keyring,
  parseKeyring,
  type Vault,
  VaultError,
} from "./mod.ts";

export type KeySource = {
  masterKey?: string;
  previousKeys?: string;
  databaseUrl?: string;
  dataDir: string;
};

export type LoadedKeyring = { keyring: Keyring; generatedFile?: string };

/** Resolves the keyring following the rules above. Throws VaultError with a clear message. */
export async function loadKeyring(source: KeySource): Promise<LoadedKeyring> {
  if (source.masterKey) {
    return { keyring: parseKeyring(source.masterKey, source.previousKeys) };
  }
  if (source.databaseUrl) {
    throw new VaultError(
      "ENCRYPTION_MASTER_KEY is required when DATABASE_URL is set: generate one with " +
        "`openssl rand -hex 32` and keep it with your backups",
    );
  }
  const file = `${source.dataDir.replace(/\/+$/, "")}/master.key`;
  let text: string;
  let generatedFile: string | undefined;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    await Deno.mkdir(source.dataDir, { recursive: true });
    text = `1:${generateKeyHex()}\n`;
    // createNew: never overwrite a key another process wrote a moment ago.
    await Deno.writeTextFile(file, text, { mode: 0o600, createNew: true });
    generatedFile = file;
  }
  return { keyring: parseKeyring(text, source.previousKeys), generatedFile };
}

const CANARY_PLAINTEXT = "dafel-vault-canary";

/**
 * Checks every configured key against its stored canary and records a canary for keys
 * seen for the first time. A key that does not match its canary stops the start.
 */
export async function verifyKeyring(db: Db, vault: Vault): Promise<void> {
  for (const version of vault.versions) {
    const context = { id: "vault", field: `canary:${version}` };
    const [row] = await db.select().from(vaultCanaries).where(eq(vaultCanaries.version, version));
    if (row) {
      let plain: string | undefined;
      try {
        plain = await vault.decrypt(row.canary, context);
      } catch {
        plain = undefined;
      }
      if (plain !== CANARY_PLAINTEXT) {
        throw new VaultError(
          `The encryption key for version ${version} does not match the key this database's ` +
            "secrets were encrypted with: check ENCRYPTION_MASTER_KEY / ENCRYPTION_PREVIOUS_KEYS",
        );
      }
    } else if (version === vault.currentVersion) {
      const canary = await vault.encrypt(CANARY_PLAINTEXT, context);
      await db.insert(vaultCanaries).values({ version, canary }).onConflictDoNothing();
    }
  }
}

/** Loads, builds and verifies the vault for a running app. */
export async function openVault(
  db: Db,
  source: KeySource,
): Promise<{ vault: Vault; generatedFile?: string }> {
  const loaded = await loadKeyring(source);
  const vault = await createVault(loaded.keyring);
  await verifyKeyring(db, vault);
  return { vault, generatedFile: loaded.generatedFile };
}
