/**
 * Key rotation while the app is busy: sources keep being read and changed through the API
 * (by an app already restarted with the new key) while `rotateSecrets` re-encrypts them.
 * Afterwards every secret decrypts with the new key alone and holds its last written value.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../config.ts";
import { dataSources } from "../db/schema.ts";
import { createDeps } from "../main.ts";
import { createApp } from "../routes/mod.ts";
import { verifyKeyring } from "../vault/keys.ts";
import { createVault, generateKeyHex, parseKeyring } from "../vault/mod.ts";
import { rotateSecrets } from "../vault/rotate.ts";
import { openSecrets } from "../vault/secrets.ts";
import { openTestDatabase } from "./helpers/app.ts";
import { recordSecrets } from "./helpers/secret_scan.ts";

const SOURCES = 24;
const WRITERS = 6;
const UPDATES_PER_WRITER = 15;

let database: Awaited<ReturnType<typeof openTestDatabase>>;
const oldKey = generateKeyHex();
const newKey = generateKeyHex();

async function appWith(keys: string, previous?: string) {
  const vault = await createVault(parseKeyring(keys, previous));
  await verifyKeyring(database.db, vault);
  const deps = createDeps({ config: parseConfig({ JOBS: "false" }), database, vault });
  const app = createApp(deps);
  return async (method: string, path: string, token: string, json?: unknown) => {
    const response = await app.request(`http://localhost${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    return { status: response.status, body: await response.json().catch(() => null) };
  };
}

beforeAll(async () => {
  database = await openTestDatabase("postgres");
});
afterAll(() => database.dispose());

describe("key rotation under load", () => {
  it("loses no secret and leaves every value readable with the new key alone", async () => {
    const { createUser } = await import("../db/users.ts");
    const { newApiToken } = await import("../routes/_auth.ts");
    const { apiTokens } = await import("../db/schema.ts");
    const { newId } = await import("../db/ids.ts");
    const user = await createUser(database.db, {
      email: "rotate@example.com",
      password: "rotate-password",
      role: "ADMIN",
    });
    const { token, tokenHash } = newApiToken();
    await database.db.insert(apiTokens).values({
      id: newId(),
      userId: user!.id,
      name: "load",
      tokenHash,
    });

    // Before: the app on key version 1 creates the sources.
    const before = await appWith(`1:${oldKey}`);
    const latest = new Map<string, { password: string; header: string }>();
    for (let i = 0; i < SOURCES; i++) {
      const values = {
        password: `initial-pw-${i}-${crypto.randomUUID()}`,
        header: `initial-h-${i}-${crypto.randomUUID()}`,
      };
      recordSecrets([values.password, values.header]);
      const created = await before("POST", "/api/data-sources", token, {
        name: `Rotating ${i}`,
        type: "REST_API",
        configuration: {
          endpoint: "https://api.example.com/items",
          auth: { type: "basic", username: "reader" },
          headers: [{ name: "X-Signature", value: values.header, secret: true }],
        },
        password: values.password,
      });
      expect(created.status).toBe(201);
      latest.set(created.body.id, values);
    }
    const ids = [...latest.keys()];

    // During: the app restarted with key 2 (key 1 still decrypts), writers and readers busy,
    // and the rotation running twice at the same time.
    const during = await appWith(`2:${newKey}`, `1:${oldKey}`);
    const rotationVault = await createVault(parseKeyring(`2:${newKey}`, `1:${oldKey}`));
    const writer = async (w: number) => {
      const mine = ids.filter((_, index) => index % WRITERS === w);
      for (let n = 0; n < UPDATES_PER_WRITER; n++) {
        const id = mine[n % mine.length];
        const values = {
          password: `pw-${w}-${n}-${crypto.randomUUID()}`,
          header: `h-${w}-${n}-${crypto.randomUUID()}`,
        };
        recordSecrets([values.password, values.header]);
        const body = n % 2 === 0 ? { password: values.password } : {
          password: values.password,
          configuration: { headers: [{ name: "X-Signature", value: values.header, secret: true }] },
        };
        const reply = await during("PUT", `/api/data-sources/${id}`, token, body);
        expect(reply.status, JSON.stringify(reply.body)).toBe(200);
        latest.set(id, {
          password: values.password,
          header: n % 2 === 0 ? latest.get(id)!.header : values.header,
        });
      }
    };
    const reader = async () => {
      for (let n = 0; n < 40; n++) {
        const reply = await during("GET", `/api/data-sources/${ids[n % ids.length]}`, token);
        expect(reply.status).toBe(200);
      }
    };
    const [first, second] = await Promise.all([
      rotateSecrets(database.db, rotationVault),
      rotateSecrets(database.db, rotationVault),
      Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), reader()]),
    ]);
    expect(first.failed + second.failed).toBe(0);
    const after = await rotateSecrets(database.db, rotationVault);
    expect(after).toMatchObject({
      rows: SOURCES,
      reEncrypted: 0,
      failed: 0,
      alreadyCurrent: SOURCES * 2,
    });

    // After: key 1 is gone; every secret decrypts and is the last value written.
    const onlyNew = await createVault(parseKeyring(`2:${newKey}`));
    const rows = await database.db.select().from(dataSources);
    expect(rows).toHaveLength(SOURCES);
    for (const row of rows) {
      const secrets = await openSecrets(onlyNew, row);
      expect(secrets.password, row.name).toBe(latest.get(row.id)!.password);
      expect((secrets.headers as Record<string, string>)["X-Signature"], row.name)
        .toBe(latest.get(row.id)!.header);
      expect(onlyNew.versionOf(row.password!)).toBe(2);
    }
  });
});
