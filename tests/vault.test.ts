import { eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../db/ids.ts";
import { dataSources, users } from "../db/schema.ts";
import { loadKeyring, verifyKeyring } from "../vault/keys.ts";
import {
  createVault,
  type Envelope,
  generateKeyHex,
  parseKey,
  parseKeyring,
  VaultError,
} from "../vault/mod.ts";
import { rotateSecrets } from "../vault/rotate.ts";
import { openSecrets, sealSecrets } from "../vault/secrets.ts";
import { openTestDatabase } from "./helpers/app.ts";

const context = { id: "src1", field: "password" };

function flipFirstByte(base64: string): string {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  bytes[0] ^= 0x01;
  return btoa(String.fromCharCode(...bytes));
}

describe("vault", () => {
  it("round-trips text, including empty and non-ASCII values", async () => {
    const vault = await createVault(parseKeyring(generateKeyHex()));
    for (const value of ["s3cr3t", "", "contraseña ✓ 🔑", "x".repeat(10_000)]) {
      const stored = await vault.encrypt(value, context);
      expect(await vault.decrypt(stored, context)).toBe(value);
    }
  });

  it("writes the seed's envelope: base64 fields, 32-byte salt, 12-byte IV, 16-byte tag, version", async () => {
    const vault = await createVault(parseKeyring(generateKeyHex()));
    const stored = await vault.encrypt("value", context);
    const envelope = JSON.parse(stored) as Envelope;
    expect(Object.keys(envelope).sort()).toEqual(["authTag", "encrypted", "iv", "salt", "version"]);
    expect(atob(envelope.salt)).toHaveLength(32);
    expect(atob(envelope.iv)).toHaveLength(12);
    expect(atob(envelope.authTag)).toHaveLength(16);
    expect(envelope.version).toBe(1);
    const again = JSON.parse(await vault.encrypt("value", context)) as Envelope;
    expect(again.salt).not.toBe(envelope.salt);
    expect(again.iv).not.toBe(envelope.iv);
    expect(again.encrypted).not.toBe(envelope.encrypted);
  });

  it("refuses tampered ciphertext, tag, IV or salt", async () => {
    const vault = await createVault(parseKeyring(generateKeyHex()));
    const envelope = JSON.parse(await vault.encrypt("tamper me", context)) as Envelope;
    for (const field of ["encrypted", "authTag", "iv", "salt"] as const) {
      const altered = { ...envelope, [field]: flipFirstByte(envelope[field]) };
      await expect(vault.decrypt(JSON.stringify(altered), context), field).rejects.toThrow(
        VaultError,
      );
    }
  });

  it("refuses a ciphertext moved to another row or another field", async () => {
    const vault = await createVault(parseKeyring(generateKeyHex()));
    const stored = await vault.encrypt("bound", context);
    await expect(vault.decrypt(stored, { id: "src2", field: "password" })).rejects.toThrow(
      /Cannot decrypt secret "password" of src2/,
    );
    await expect(vault.decrypt(stored, { id: "src1", field: "apiKey" })).rejects.toThrow(
      VaultError,
    );
  });

  it("a wrong key is a clear error", async () => {
    const stored = await (await createVault(parseKeyring(generateKeyHex()))).encrypt("x", context);
    const other = await createVault(parseKeyring(generateKeyHex()));
    await expect(other.decrypt(stored, context)).rejects.toThrow(
      /with key version 1: wrong key, or the value was altered or moved/,
    );
    await expect(other.decrypt("not json", context)).rejects.toThrow(/not a vault envelope/);
  });

  it("parses hex and base64 keys with an optional version, and rejects bad ones", () => {
    const hex = generateKeyHex();
    expect(parseKey(hex).version).toBe(1);
    expect(parseKey(`3:${hex}`).version).toBe(3);
    const base64 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    expect(parseKey(base64).key).toHaveLength(32);
    expect(() => parseKey("abcd")).toThrow(/32 bytes/);
    expect(() => parseKeyring(`2:${hex}`, `2:${generateKeyHex()}`)).toThrow(/configured twice/);
    expect(() => parseKeyring(hex, generateKeyHex())).toThrow(/version:key/);
  });

  it("decrypts with older keys and encrypts with the newest", async () => {
    const oldKey = generateKeyHex();
    const v1 = await createVault(parseKeyring(`1:${oldKey}`));
    const stored = await v1.encrypt("kept", context);
    const v2 = await createVault(parseKeyring(`2:${generateKeyHex()}`, `1:${oldKey}`));
    expect(await v2.decrypt(stored, context)).toBe("kept");
    expect(v2.versionOf(await v2.encrypt("new", context))).toBe(2);
    const withoutOld = await createVault(parseKeyring(`2:${generateKeyHex()}`));
    await expect(withoutOld.decrypt(stored, context)).rejects.toThrow(/No key for version 1/);
  });
});

describe("key rules at start", () => {
  it("generates a key file once (mode 0600) in embedded mode, and reuses it", async () => {
    const dataDir = await Deno.makeTempDir();
    const first = await loadKeyring({ dataDir });
    expect(first.generatedFile).toBe(`${dataDir}/master.key`);
    expect((await Deno.stat(`${dataDir}/master.key`)).mode! & 0o777).toBe(0o600);
    const second = await loadKeyring({ dataDir });
    expect(second.generatedFile).toBeUndefined();
    expect(second.keyring.current.key).toEqual(first.keyring.current.key);
    await Deno.remove(dataDir, { recursive: true });
  });

  it("refuses to start with DATABASE_URL and no key", async () => {
    await expect(loadKeyring({ dataDir: "/nonexistent", databaseUrl: "postgres://x/y" }))
      .rejects.toThrow(/ENCRYPTION_MASTER_KEY is required when DATABASE_URL is set/);
  });

  it("refuses a key that does not match the database's canary, and accepts the right one", async () => {
    const database = await openTestDatabase("pglite");
    const key = generateKeyHex();
    await verifyKeyring(database.db, await createVault(parseKeyring(key)));
    await verifyKeyring(database.db, await createVault(parseKeyring(key)));
    await expect(verifyKeyring(database.db, await createVault(parseKeyring(generateKeyHex()))))
      .rejects.toThrow(/does not match the key this database's secrets were encrypted with/);
    await database.dispose();
  });
});

describe("rotation", () => {
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  const oldKey = generateKeyHex();
  const newKey = generateKeyHex();
  const secrets = new Map<string, Record<string, unknown>>();

  beforeAll(async () => {
    database = await openTestDatabase("pglite");
    const v1 = await createVault(parseKeyring(`1:${oldKey}`));
    const userId = newId();
    await database.db.insert(users).values({
      id: userId,
      email: "r@example.com",
      passwordHash: "x",
    });
    for (let i = 0; i < 5; i++) {
      const id = newId();
      const values = { password: `pw-${i}`, apiKey: `key-${i}`, headers: { "X-Sig": `sig-${i}` } };
      secrets.set(id, values);
      await database.db.insert(dataSources).values({
        id,
        name: `s${i}`,
        type: "REST_API",
        createdById: userId,
        ...(await sealSecrets(v1, id, values)),
      });
    }
  });
  afterAll(() => database.dispose());

  it("dry run proves every secret decrypts and writes nothing", async () => {
    const v2 = await createVault(parseKeyring(`2:${newKey}`, `1:${oldKey}`));
    const before = await database.db.select().from(dataSources);
    const report = await rotateSecrets(database.db, v2, { dryRun: true });
    expect(report).toMatchObject({
      rows: 5,
      reEncrypted: 15,
      alreadyCurrent: 0,
      failed: 0,
      dryRun: true,
    });
    expect(await database.db.select().from(dataSources)).toEqual(before);
  });

  it("a wrong old key fails clearly and overwrites nothing", async () => {
    const wrong = await createVault(parseKeyring(`2:${newKey}`, `1:${generateKeyHex()}`));
    const before = await database.db.select().from(dataSources);
    const report = await rotateSecrets(database.db, wrong);
    expect(report.failed).toBe(15);
    expect(report.reEncrypted).toBe(0);
    expect(report.failures[0]).toMatch(/wrong key/);
    expect(report.failures.join("\n")).not.toMatch(/pw-|key-\d|sig-/);
    expect(await database.db.select().from(dataSources)).toEqual(before);
  });

  it("re-encrypts everything under the newest key; a second run changes nothing; the old key can go", async () => {
    const v2 = await createVault(parseKeyring(`2:${newKey}`, `1:${oldKey}`));
    const report = await rotateSecrets(database.db, v2);
    expect(report).toMatchObject({ rows: 5, reEncrypted: 15, alreadyCurrent: 0, failed: 0 });
    const again = await rotateSecrets(database.db, v2);
    expect(again).toMatchObject({ reEncrypted: 0, alreadyCurrent: 15, failed: 0 });
    const onlyNew = await createVault(parseKeyring(`2:${newKey}`));
    for (const [id, values] of secrets) {
      const [row] = await database.db.select().from(dataSources).where(eq(dataSources.id, id));
      expect(await openSecrets(onlyNew, row)).toEqual(values);
    }
  });
});
