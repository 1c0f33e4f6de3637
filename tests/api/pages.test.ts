/**
 * The admin pages in-process, on both backends: full pages and the fragments htmx asks for,
 * forms generated from the connector schemas, errors rendered back into them, and secrets
 * that never reach a page. A real REST API on loopback stands in for a remote source where
 * a connection has to work.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectors } from "../../connectors/mod.ts";
import { TOP_LEVEL_FIELDS } from "../../connectors/settings.ts";
import { openSecrets } from "../../vault/secrets.ts";
import { connectionTests, dataSources, schemaSnapshots } from "../../db/schema.ts";
import { newId } from "../../db/ids.ts";
import { eq } from "drizzle-orm";
import { type Reply, startTestApp, type TestApp } from "../helpers/app.ts";
import { recordSecrets } from "../helpers/secret_scan.ts";

const API_KEY = "rest-key-7d1f0c2e";
const PG_PASSWORD = "pg-pass-91b3c7a2";

let t: TestApp;
let admin: string;
let adminId: string;
let api: Deno.HttpServer<Deno.NetAddr>;
let apiUrl: string;

beforeAll(async () => {
  t = await startTestApp({ env: { ALLOW_PRIVATE_NETWORKS: "true" } });
  adminId = (await t.user("admin@example.com", "admin-password", "ADMIN")).id;
  admin = await t.login("admin@example.com", "admin-password");
  // A small JSON API that wants an API key: the remote end of the REST sources below.
  api = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (request.headers.get("x-api-key") !== API_KEY) {
      return Response.json({ error: "unauthorized" }, { status: 401 });
    }
    return Response.json({
      data: [
        { id: 1, name: "Ada", joined: "2024-01-02" },
        { id: 2, name: "Grace", joined: "2024-03-04" },
      ],
    });
  });
  apiUrl = `http://127.0.0.1:${api.addr.port}/people`;
});

afterAll(async () => {
  await api?.shutdown();
  await t?.close();
});

type Fields = Record<string, string> | [string, string][];

function post(path: string, fields: Fields, options: { cookie?: string; htmx?: string } = {}) {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    origin: "http://localhost",
  };
  if (options.htmx !== undefined) {
    headers["hx-request"] = "true";
    if (options.htmx) headers["hx-target"] = options.htmx;
  }
  return t.call("POST", path, {
    cookie: options.cookie ?? admin,
    body: new URLSearchParams(fields).toString(),
    headers,
  });
}

function get(
  path: string,
  options: { cookie?: string; htmx?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.htmx !== undefined) {
    headers["hx-request"] = "true";
    if (options.htmx) headers["hx-target"] = options.htmx;
  }
  return t.call("GET", path, { cookie: options.cookie ?? admin, headers });
}

function restFields(name: string, apiKey = API_KEY): Fields {
  return {
    type: "REST_API",
    name,
    description: "People API",
    "configuration.endpoint": apiUrl,
    "configuration.method": "GET",
    "configuration.auth.type": "apiKey",
    "configuration.auth.headerName": "X-API-Key",
    apiKey,
    "configuration.recordsPath": "data",
    "configuration.pagination.type": "none",
    "configuration.pagination.maxPages": "10",
  };
}

async function createViaApi(body: Record<string, unknown>): Promise<string> {
  const reply = await t.call("POST", "/api/data-sources", { cookie: admin, json: body });
  expect(reply.status, reply.text).toBe(201);
  return reply.body.id;
}

function idFromLocation(reply: Reply): string {
  const location = reply.headers.get("location") ?? "";
  const match = /^\/data-sources\/([^/?#]+)$/.exec(location);
  expect(match, `location ${location}`).not.toBeNull();
  return match![1];
}

/** The input element with this name, as HTML text. */
function input(html: string, name: string): string {
  const match = new RegExp(
    `<(input|select|textarea)[^>]*name="${name.replaceAll(".", "\\.")}"[^>]*>`,
  )
    .exec(html);
  return match?.[0] ?? "";
}

describe("data-source list", () => {
  it("shows an empty state that leads to the wizard when there are no sources", async () => {
    const page = await get("/data-sources");
    expect(page.status).toBe(200);
    expect(page.text).toContain("Connect your first data source");
    expect(page.text).toContain('href="/data-sources/new"');
    expect(page.text).toContain("admin@example.com");
  });

  it("lists sources with type, status, and filters them by search, type and status", async () => {
    for (let index = 0; index < 3; index++) {
      await createViaApi({
        name: `Warehouse ${index}`,
        type: "POSTGRESQL",
        host: "db.internal",
        database: "wh",
        username: "reader",
        password: PG_PASSWORD,
      });
    }
    await createViaApi({
      name: "Billing API",
      type: "REST_API",
      configuration: { endpoint: "https://billing.example.com/v1/invoices" },
    });
    await t.deps.db.update(dataSources).set({ status: "ERROR" })
      .where(eq(dataSources.name, "Warehouse 1"));

    const page = await get("/data-sources");
    expect(page.text).toContain("Warehouse 0");
    expect(page.text).toContain("Billing API");
    expect(page.text).toContain("PostgreSQL");
    expect(page.text).toContain('class="type-icon"');
    expect(page.text).toContain("1–4 of 4 data sources");

    const byType = await get("/data-sources?type=REST_API");
    expect(byType.text).toContain("Billing API");
    expect(byType.text).not.toContain("Warehouse 0");

    const byStatus = await get("/data-sources?status=ERROR");
    expect(byStatus.text).toContain("Warehouse 1");
    expect(byStatus.text).not.toContain("Warehouse 2");

    const none = await get("/data-sources?search=nothing-like-this");
    expect(none.text).toContain("No data sources match");
  });

  it("answers the search box with only the results fragment, and a history restore with the page", async () => {
    const fragment = await get("/data-sources?search=billing", { htmx: "source-results" });
    expect(fragment.status).toBe(200);
    expect(fragment.text.startsWith('<div id="source-results"')).toBe(true);
    expect(fragment.text).not.toContain("<html");
    expect(fragment.text).toContain("Billing API");
    expect(fragment.text).not.toContain("Warehouse");

    const restore = await get("/data-sources?search=billing", {
      htmx: "",
      headers: { "hx-history-restore-request": "true" },
    });
    expect(restore.text).toContain("<html");
    expect(restore.text).toContain('value="billing"');
  });

  it("pages through the list with links that keep the filters", async () => {
    const first = await get("/data-sources?search=warehouse&limit=2");
    expect(first.text).toContain("1–2 of 3 data sources");
    expect(first.text).toContain('href="/data-sources?search=warehouse&amp;limit=2&amp;page=2"');
    const second = await get("/data-sources?search=warehouse&limit=2&page=2");
    expect(second.text).toContain("3–3 of 3 data sources");
    expect(second.text).toContain("Page 2 of 2");
  });

  it("ignores filter values that are not valid instead of failing", async () => {
    const page = await get("/data-sources?type=NOPE&status=&page=-3&limit=abc");
    expect(page.status).toBe(200);
    expect(page.text).toContain("1–4 of 4 data sources");
  });
});

describe("creation wizard", () => {
  it("offers a card for each of the 8 types", async () => {
    const page = await get("/data-sources/new");
    for (
      const type of [
        "POSTGRESQL",
        "MYSQL",
        "MONGODB",
        "REST_API",
        "GRAPHQL",
        "S3",
        "GOOGLE_SHEETS",
        "CSV_FILE",
      ]
    ) {
      expect(page.text).toContain(`href="/data-sources/new?type=${type}"`);
    }
  });

  it("renders a field for every setting of every type", async () => {
    for (const [type, spec] of Object.entries(connectors)) {
      const page = await get(`/data-sources/new?type=${type}`);
      expect(page.status, type).toBe(200);
      const keys = [
        ...Object.keys(spec.configSchema.shape),
        ...Object.keys(spec.secretsSchema.shape),
      ];
      for (const key of keys) {
        // Secret header values are typed in the header rows, not a field of their own.
        if (key === "headers" && spec.secretsSchema.shape.headers) {
          expect(page.text, type).toContain('name="configuration.headers.0.secret"');
          continue;
        }
        const name = TOP_LEVEL_FIELDS.includes(key as never) ? key : `configuration.${key}`;
        expect(page.text, `${type} ${name}`).toMatch(
          new RegExp(`name="${name.replaceAll(".", "\\.")}(\\.[^"]+)?"`),
        );
      }
    }
  });

  it("generates the PostgreSQL form from its schemas: required fields, port 5432, a password input", async () => {
    const page = await get("/data-sources/new?type=POSTGRESQL");
    expect(input(page.text, "host")).toContain("required");
    expect(input(page.text, "host")).toContain('placeholder="db.example.com"');
    expect(input(page.text, "port")).toContain('value="5432"');
    expect(input(page.text, "port")).toContain('type="number"');
    expect(input(page.text, "password")).toContain('type="password"');
    expect(input(page.text, "ssl")).toContain('type="checkbox"');
    expect(input(page.text, "configuration.poolConfig.max")).toContain('max="100"');
    expect(page.text).toContain("Encrypt the connection; required by most hosted databases");
  });

  it("generates selects for enums, fieldsets for nested settings and header rows with a secret box", async () => {
    const rest = await get("/data-sources/new?type=REST_API");
    expect(input(rest.text, "configuration.method")).toContain("<select");
    expect(rest.text).toContain('<option value="POST">POST</option>');
    expect(rest.text).toMatch(/<legend>Authentication<\/legend>/);
    expect(input(rest.text, "configuration.auth.type")).toContain("<select");
    expect(input(rest.text, "configuration.headers.0.name")).toContain('type="text"');
    expect(input(rest.text, "configuration.headers.0.secret")).toContain('type="checkbox"');
    expect(input(rest.text, "apiKey")).toContain('type="password"');

    const s3 = await get("/data-sources/new?type=S3");
    expect(input(s3.text, "configuration.secretKey")).toContain('type="password"');
    expect(input(s3.text, "configuration.bucketName")).toContain("required");

    const sheets = await get("/data-sources/new?type=GOOGLE_SHEETS");
    expect(input(sheets.text, "configuration.credentials")).toContain("<textarea");

    const csv = await get("/data-sources/new?type=CSV_FILE");
    expect(input(csv.text, "configuration.delimiter")).toContain('value=","');
  });

  it("adds a header row on request, keeping what was typed", async () => {
    const page = await post("/data-sources/new/form", {
      ...restFields("Rows"),
      "configuration.headers.0.name": "X-Trace",
      "configuration.headers.0.value": "on",
      "configuration.headers.1.name": "",
      "configuration.headers.1.value": "",
      intent: "add-header",
    });
    expect(page.status).toBe(200);
    expect(input(page.text, "configuration.headers.0.name")).toContain('value="X-Trace"');
    expect(input(page.text, "configuration.headers.2.name")).not.toBe("");
    expect(input(page.text, "configuration.headers.3.name")).toBe("");
  });

  it("renders every error of an invalid form next to its field and keeps what was typed", async () => {
    const reply = await post("/data-sources", {
      type: "POSTGRESQL",
      name: "",
      host: "",
      port: "99999",
      database: "shop",
      username: "reader",
      password: PG_PASSWORD,
    });
    expect(reply.status).toBe(400);
    expect(reply.text).toContain("Name is required");
    expect(reply.text).toContain("Host is required");
    expect(input(reply.text, "host")).toContain('aria-invalid="true"');
    expect(input(reply.text, "port")).toContain('aria-invalid="true"');
    expect(input(reply.text, "port")).toContain('value="99999"');
    expect(input(reply.text, "database")).toContain('value="shop"');
    expect(reply.text).toContain('id="form-errors"');
    // The password typed is not sent back.
    expect(reply.text).not.toContain(PG_PASSWORD);
  });

  it("maps errors inside configuration back to their fields", async () => {
    const reply = await post("/data-sources", {
      ...restFields("Bad endpoint"),
      "configuration.endpoint": "ftp://example.com/file",
    });
    expect(reply.status).toBe(400);
    expect(input(reply.text, "configuration.endpoint")).toContain('aria-invalid="true"');
    expect(reply.text).toContain("Must be an http:// or https:// URL");
    expect(reply.text).not.toContain(API_KEY);
  });

  it("creates a source and goes to its page; htmx gets a client-side redirect", async () => {
    const reply = await post("/data-sources", {
      type: "POSTGRESQL",
      name: "Orders DB",
      host: "orders.internal",
      port: "5432",
      database: "orders",
      username: "reader",
      password: PG_PASSWORD,
      ssl: "true",
    });
    expect(reply.status).toBe(303);
    const id = idFromLocation(reply);
    const [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, id));
    expect(row).toMatchObject({
      host: "orders.internal",
      port: 5432,
      ssl: true,
      type: "POSTGRESQL",
    });
    expect(await openSecrets(t.deps.vault, row)).toEqual({ password: PG_PASSWORD });

    const viaHtmx = await post("/data-sources", { ...restFields("Htmx created") }, { htmx: "" });
    expect(viaHtmx.status).toBe(200);
    const location = JSON.parse(viaHtmx.headers.get("hx-location") ?? "{}");
    expect(location.path).toMatch(/^\/data-sources\/[^/]+$/);
    const audit = await t.call("GET", "/api/audit-logs?action=DATA_SOURCE_CREATE", {
      cookie: admin,
    });
    expect(audit.body.length).toBeGreaterThanOrEqual(2);
  });

  it("fills the demo settings without putting the demo password in the page, and uses it on save", async () => {
    const before = await get("/data-sources/new?type=POSTGRESQL");
    expect(before.text).not.toContain("Use Demo Database");
    t.deps.demo = {
      host: "127.0.0.1",
      port: 5499,
      database: "demo",
      username: "demo_user",
      password: "demo-secret-5b8e",
      ssl: false,
    };
    try {
      const offered = await get("/data-sources/new?type=POSTGRESQL");
      expect(offered.text).toContain("Use Demo Database");
      expect((await get("/data-sources/new?type=MYSQL")).text).not.toContain("Use Demo Database");
      const filled = await post("/data-sources/new/form", {
        type: "POSTGRESQL",
        name: "",
        intent: "demo",
      });
      expect(input(filled.text, "host")).toContain('value="127.0.0.1"');
      expect(input(filled.text, "port")).toContain('value="5499"');
      expect(input(filled.text, "username")).toContain('value="demo_user"');
      expect(input(filled.text, "demo")).toContain('value="1"');
      expect(filled.text).not.toContain("demo-secret-5b8e");

      const saved = await post("/data-sources", {
        type: "POSTGRESQL",
        name: "Demo store",
        demo: "1",
        host: "127.0.0.1",
        port: "5499",
        database: "demo",
        username: "demo_user",
        password: "",
      });
      expect(saved.status).toBe(303);
      const [row] = await t.deps.db.select().from(dataSources)
        .where(eq(dataSources.id, idFromLocation(saved)));
      expect(await openSecrets(t.deps.vault, row)).toEqual({ password: "demo-secret-5b8e" });

      // Pointed elsewhere, the demo password is not handed out.
      const elsewhere = await post("/data-sources", {
        type: "POSTGRESQL",
        name: "Not the demo",
        demo: "1",
        host: "other.internal",
        port: "5499",
        database: "demo",
        username: "demo_user",
        password: "",
      });
      expect(elsewhere.status).toBe(400);
      expect(elsewhere.text).toContain("Password is required");
    } finally {
      t.deps.demo = undefined;
    }
  });
});

describe("the CSV form's file upload", () => {
  /** The wizard's CSV form as the browser posts it without JavaScript, with a file chosen. */
  function csvUpload(name: string | null, content = "id,name\n1,Ada\n2,Grace\n") {
    const body = new FormData();
    body.append("type", "CSV_FILE");
    body.append("name", "Customers file");
    body.append("description", "");
    body.append("configuration.filePath", "");
    body.append("configuration.delimiter", ";");
    body.append("intent", "upload");
    body.append(
      "upload.configuration.filePath",
      name === null ? new File([], "") : new File([content], name, { type: "text/csv" }),
    );
    return body;
  }

  async function stored(path: string): Promise<string> {
    return await Deno.readTextFile(`${t.deps.config.filesDir}/${path}`);
  }

  it("offers an upload to /api/files and the files already uploaded next to the path", async () => {
    await Deno.mkdir(`${t.deps.config.filesDir}/exports`, { recursive: true });
    await Deno.writeTextFile(`${t.deps.config.filesDir}/exports/listed.csv`, "a\n1\n");
    const page = await get("/data-sources/new?type=CSV_FILE");
    const upload = input(page.text, "upload.configuration.filePath");
    expect(upload).toContain('type="file"');
    expect(upload).toContain('data-upload="/api/files"');
    expect(upload).toContain('accept=".csv,.tsv,.txt"');
    expect(page.text).toContain('formaction="/data-sources/new/upload"');
    expect(page.text).toContain('formenctype="multipart/form-data"');
    expect(input(page.text, "pick.configuration.filePath")).toContain("<select");
    expect(page.text).toContain('<option value="exports/listed.csv">exports/listed.csv (4 B)');
    expect(input(page.text, "configuration.filePath")).toContain('type="text"');
  });

  it("stores a file posted without JavaScript and comes back with its path in the field", async () => {
    const reply = await t.call("POST", "/data-sources/new/upload", {
      cookie: admin,
      body: csvUpload("people export.csv"),
    });
    expect(reply.status, reply.text).toBe(200);
    expect(input(reply.text, "configuration.filePath")).toContain('value="people export.csv"');
    expect(input(reply.text, "name")).toContain('value="Customers file"');
    expect(input(reply.text, "configuration.delimiter")).toContain('value=";"');
    expect(reply.text).toContain("Uploaded people export.csv (22 B)");
    expect(reply.text).toContain('<option value="people export.csv" selected="">');
    expect(await stored("people export.csv")).toBe("id,name\n1,Ada\n2,Grace\n");
    // The same storage as POST /api/files: the name is taken now, and the upload audited.
    const again = await t.call("POST", "/data-sources/new/upload", {
      cookie: admin,
      body: csvUpload("people export.csv", "id\n3\n"),
    });
    expect(input(again.text, "configuration.filePath")).toContain('value="people export-2.csv"');
    expect(again.text).toContain("Uploaded as people export-2.csv");
    expect(await stored("people export.csv")).toBe("id,name\n1,Ada\n2,Grace\n");
    const audit = await t.call("GET", "/api/audit-logs?action=FILE_UPLOAD", { cookie: admin });
    expect(audit.body.map((row: { entityId: string }) => row.entityId)).toEqual(
      expect.arrayContaining(["people export.csv", "people export-2.csv"]),
    );

    // The form as it came back saves a source that reads the uploaded file.
    const saved = await post("/data-sources", {
      type: "CSV_FILE",
      name: "Customers file",
      "configuration.filePath": "people export.csv",
      "configuration.delimiter": ",",
      "configuration.quote": '"',
      "configuration.encoding": "utf8",
      "configuration.headers": "true",
    });
    expect(saved.status, saved.text).toBe(303);
    const test = await t.call("POST", `/api/data-sources/${idFromLocation(saved)}/test`, {
      cookie: admin,
    });
    expect(test.body).toMatchObject({ success: true });
  });

  it("puts a refused upload next to the file field and stores nothing", async () => {
    const before = (await t.call("GET", "/api/files", { cookie: admin })).body.length;
    const wrongType = await t.call("POST", "/data-sources/new/upload", {
      cookie: admin,
      body: csvUpload("report.exe"),
    });
    expect(wrongType.status).toBe(400);
    expect(input(wrongType.text, "configuration.filePath")).toContain('aria-invalid="true"');
    expect(wrongType.text).toContain("Only .csv, .tsv, .txt files can be uploaded");
    expect(input(wrongType.text, "name")).toContain('value="Customers file"');

    const none = await t.call("POST", "/data-sources/new/upload", {
      cookie: admin,
      body: csvUpload(null),
    });
    expect(none.status).toBe(400);
    expect(none.text).toContain("Choose a file to upload first");
    expect((await t.call("GET", "/api/files", { cookie: admin })).body.length).toBe(before);
  });

  it("refuses an upload posted from another site", async () => {
    const reply = await t.call("POST", "/data-sources/new/upload", {
      cookie: admin,
      body: csvUpload("forged.csv"),
      headers: { origin: "https://evil.example" },
    });
    expect(reply.status).toBe(403);
    const files = (await t.call("GET", "/api/files", { cookie: admin })).body;
    expect(files.map((file: { path: string }) => file.path)).not.toContain("forged.csv");
  });

  it("fills the path with a file chosen from the list, without JavaScript", async () => {
    const page = await post("/data-sources/new/form", {
      type: "CSV_FILE",
      name: "Listed",
      "configuration.filePath": "",
      "pick.configuration.filePath": "exports/listed.csv",
      intent: "pick",
    });
    expect(page.status).toBe(200);
    expect(input(page.text, "configuration.filePath")).toContain('value="exports/listed.csv"');
    expect(input(page.text, "name")).toContain('value="Listed"');
  });

  it("uploads a replacement file on the edit form of a saved source", async () => {
    const csvId = await createViaApi({
      name: "Edited file",
      type: "CSV_FILE",
      configuration: { filePath: "exports/listed.csv" },
    });
    const edit = await get(`/data-sources/${csvId}/edit`);
    expect(edit.text).toContain(`formaction="/data-sources/${csvId}/edit/upload"`);
    expect(edit.text).toContain('<option value="exports/listed.csv" selected="">');
    const body = csvUpload("replacement.csv", "id\n9\n");
    body.set("name", "Edited file");
    const reply = await t.call("POST", `/data-sources/${csvId}/edit/upload`, {
      cookie: admin,
      body,
    });
    expect(reply.status).toBe(200);
    expect(input(reply.text, "configuration.filePath")).toContain('value="replacement.csv"');
    expect(await stored("replacement.csv")).toBe("id\n9\n");
    // Only its owner (or an administrator) uploads through a source's edit form.
    await t.user("stranger@example.com", "stranger-password");
    const stranger = await t.login("stranger@example.com", "stranger-password");
    const refused = await t.call("POST", `/data-sources/${csvId}/edit/upload`, {
      cookie: stranger,
      body: csvUpload("intruder.csv"),
    });
    expect(refused.status).toBe(403);
  });
});

describe("connection test from the pages", () => {
  it("tests typed settings before saving and shows each stage as a fragment", async () => {
    const reply = await post("/data-sources/new/test", restFields("Typed"), {
      htmx: "test-result",
    });
    expect(reply.status).toBe(200);
    expect(reply.text).not.toContain("<html");
    expect(reply.text).toContain('data-outcome="success"');
    expect(reply.text).toMatch(/data-stage="connect"/);
    expect(reply.text).toMatch(/data-stage="query"/);
    expect(reply.text).toMatch(/\d+ ms/);
    expect(reply.text).not.toContain(API_KEY);
    const rows = await t.deps.db.select().from(dataSources).where(eq(dataSources.name, "Typed"));
    expect(rows).toHaveLength(0);
  });

  it("shows a failure's code and hint, and puts the hint next to the field it names", async () => {
    const reply = await post("/data-sources/new/test", restFields("Wrong key", "not-the-key"), {
      htmx: "test-result",
    });
    expect(reply.text).toContain('data-outcome="failure"');
    expect(reply.text).toContain("AUTH_FAILED");
    const hint = /<small id="hint-configuration-auth"[^>]*hx-swap-oob="true"[^>]*>([^<]+)<\/small>/
      .exec(reply.text);
    expect(hint?.[1]).toMatch(/API key/);
    expect(reply.text).toMatch(/<small id="hint-configuration-endpoint"[^>]*><\/small>/);
    expect(reply.text).not.toContain("not-the-key");

    // Without JavaScript the whole form comes back with the hint in place.
    const page = await post("/data-sources/new/test", restFields("Wrong key", "not-the-key"));
    expect(page.text).toContain("<html");
    expect(page.text).toContain("AUTH_FAILED");
    expect(page.text).toMatch(/<small id="hint-configuration-auth"[^>]*>[^<]*API key/);
    expect(page.text).not.toContain("not-the-key");
  });

  it("lists what to fix when the typed settings are not valid", async () => {
    const reply = await post("/data-sources/new/test", {
      ...restFields("Invalid"),
      "configuration.endpoint": "",
    }, { htmx: "test-result" });
    expect(reply.text).toContain('data-outcome="invalid"');
    expect(reply.text).toContain('href="#f-configuration-endpoint"');
  });

  it("tests a saved source, records it, and updates status and chart out of band", async () => {
    const created = await post("/data-sources", restFields("People"));
    const id = idFromLocation(created);
    const reply = await post(`/data-sources/${id}/test`, {}, { htmx: "test-result" });
    expect(reply.text).toContain('data-outcome="success"');
    expect(reply.text).toMatch(/<dl class="facts" id="status-facts" hx-swap-oob="true">/);
    expect(reply.text).toContain("Connected");
    expect(reply.text).toMatch(/<div id="response-chart" hx-swap-oob="true">/);
    expect(reply.text).toContain("<svg");
    const [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, id));
    expect(row.status).toBe("CONNECTED");
  });

  it("counts page tests toward the 10-a-minute limit and says when to retry", async () => {
    const user = await t.user("busy@example.com", "busy-password");
    const cookie = await t.login("busy@example.com", "busy-password");
    for (let index = 0; index < 10; index++) {
      await t.deps.limiters.connectionTest.consume(user.id);
    }
    const page = await post("/data-sources/new/test", restFields("Busy"), { cookie });
    expect(page.status).toBe(429);
    expect(Number(page.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(page.text).toMatch(/try again in \d+ s/);
    // htmx gets the same panel as a 200, so it swaps it in.
    const fragment = await post("/data-sources/new/test", restFields("Busy"), {
      cookie,
      htmx: "test-result",
    });
    expect(fragment.status).toBe(200);
    expect(Number(fragment.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(fragment.text).toContain('data-outcome="rate-limited"');
    expect(fragment.text).toMatch(/try again in \d+ s/);
    const api = await t.call("POST", "/api/test-demo", { cookie });
    expect([409, 429]).toContain(api.status);
  });
});

describe("source detail page", () => {
  let id: string;

  beforeAll(async () => {
    id = await createViaApi({
      name: "Shop",
      type: "POSTGRESQL",
      host: "shop.internal",
      database: "shop",
      username: "reader",
      password: PG_PASSWORD,
    });
    const stream = (name: string, columns: string[], foreignKeys: unknown[] = []) => ({
      name,
      schema: "public",
      kind: "table",
      columns: columns.map((column) => ({
        name: column,
        type: column === "id" ? "integer" : "text",
        nullable: column !== "id",
        primaryKey: column === "id",
      })),
      rowCount: 42,
      rowCountExact: true,
      constraints: { primaryKeys: ["id"], foreignKeys, uniqueKeys: [] },
    });
    const older = { streams: [stream("customers", ["id", "email"])] };
    const newer = {
      streams: [
        stream("customers", ["id", "email", "country"]),
        stream("orders", ["id", "customer_id"], [{
          columns: ["customer_id"],
          referencedSchema: "public",
          referencedTable: "customers",
          referencedColumns: ["id"],
        }]),
      ],
    };
    await t.deps.db.insert(schemaSnapshots).values([
      {
        id: newId(),
        dataSourceId: id,
        hash: "a",
        schema: older,
        discoveredAt: new Date(Date.now() - 60_000),
      },
      { id: newId(), dataSourceId: id, hash: "b", schema: newer, discoveredAt: new Date() },
    ]);
    await t.deps.db.insert(connectionTests).values(
      [12, 15, 9, 30, 11].map((ms, index) => ({
        id: newId(),
        dataSourceId: id,
        testedAt: new Date(Date.now() - (5 - index) * 60_000),
        success: index !== 3,
        responseTime: ms,
        errorCode: index === 3 ? "TIMEOUT" : null,
      })),
    );
  });

  it("shows overview, chart, schema with keys and links, changes, and the place for sync", async () => {
    const page = await get(`/data-sources/${id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain("Shop");
    expect(page.text).toContain('role="img"');
    expect(page.text).toMatch(/5 tests from .* 1 failed/);
    expect(page.text).toContain('id="table-public-orders"');
    expect(page.text).toContain('href="#table-public-customers"');
    expect(page.text).toContain("FK → customers.id");
    expect(page.text).toContain(">PK<");
    expect(page.text).toContain("Table added: <code>public.orders</code>");
    expect(page.text).toContain("Column added: <code>public.customers</code>.<code>country</code>");
    expect(page.text).toContain('id="sync"');
    expect(page.text).toContain(">stored<");
    expect(page.text).not.toContain(PG_PASSWORD);
  });

  it("filters the schema as a fragment, or as a page without JavaScript", async () => {
    const fragment = await get(`/data-sources/${id}/schema?filter=customer_id`, {
      htmx: "schema-tables",
    });
    expect(fragment.text).not.toContain("<html");
    expect(fragment.text).toContain("1 of 2 tables match");
    expect(fragment.text).toContain("public.orders");
    expect(fragment.text).not.toContain('id="table-public-customers"');
    const page = await get(`/data-sources/${id}?filter=country`);
    expect(page.text).toContain("1 of 2 tables match");
  });

  it("previews rows of a discovered table in a grid", async () => {
    const created = await post("/data-sources", restFields("People preview"));
    const restId = idFromLocation(created);
    await post(`/data-sources/${restId}/test`, {}, { htmx: "test-result" });
    const grid = await get(`/data-sources/${restId}/preview?table=people&limit=10`, {
      htmx: "preview-grid",
    });
    expect(grid.status).toBe(200);
    expect(grid.text).toContain("Grace");
    expect(grid.text).toContain("2 rows of");
    const unknown = await get(`/data-sources/${restId}/preview?table=nope`, {
      htmx: "preview-grid",
    });
    expect(unknown.text).toContain("There is no table “nope”");
    const page = await get(`/data-sources/${restId}/preview?table=people`);
    expect(page.text).toContain("<html");
    expect(page.text).toContain("Ada");
  });

  it("edits a source: secrets read as stored, blank keeps them, the clear box removes them", async () => {
    const restId = idFromLocation(await post("/data-sources", restFields("Editable")));
    const edit = await get(`/data-sources/${restId}/edit`);
    expect(input(edit.text, "apiKey")).toContain('placeholder="stored — leave blank to keep"');
    expect(input(edit.text, "configuration.endpoint")).toContain(`value="${apiUrl}"`);
    expect(edit.text).not.toContain(API_KEY);

    const kept = await post(`/data-sources/${restId}/edit`, {
      ...restFields("Edited"),
      apiKey: "",
      "configuration.recordsPath": "",
    });
    expect(kept.status).toBe(303);
    let [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, restId));
    expect(row.name).toBe("Edited");
    expect(row.configuration.recordsPath).toBeUndefined();
    expect(await openSecrets(t.deps.vault, row)).toEqual({ apiKey: API_KEY });

    const cleared = await post(`/data-sources/${restId}/edit`, {
      ...restFields("Edited"),
      "configuration.auth.type": "none",
      apiKey: "",
      "clear.apiKey": "true",
    });
    expect(cleared.status).toBe(303);
    [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, restId));
    expect(await openSecrets(t.deps.vault, row)).toEqual({});

    const invalid = await post(`/data-sources/${restId}/edit`, {
      ...restFields(""),
      apiKey: "",
    });
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain("Name is required");
  });

  it("keeps a secret header's value when it is left blank on edit", async () => {
    const restId = await createViaApi({
      name: "Headers",
      type: "REST_API",
      configuration: {
        endpoint: apiUrl,
        headers: [{ name: "X-Api-Key", value: API_KEY, secret: true }],
      },
    });
    const edit = await get(`/data-sources/${restId}/edit`);
    expect(input(edit.text, "configuration.headers.0.name")).toContain('value="X-Api-Key"');
    expect(input(edit.text, "configuration.headers.0.value")).toContain("stored — leave blank");
    expect(edit.text).not.toContain(API_KEY);
    const saved = await post(`/data-sources/${restId}/edit`, {
      type: "REST_API",
      name: "Headers",
      "configuration.endpoint": apiUrl,
      "configuration.headers.0.name": "X-Api-Key",
      "configuration.headers.0.value": "",
      "configuration.headers.0.secret": "true",
    });
    expect(saved.status).toBe(303);
    const [row] = await t.deps.db.select().from(dataSources).where(eq(dataSources.id, restId));
    expect(await openSecrets(t.deps.vault, row)).toEqual({ headers: { "X-Api-Key": API_KEY } });
  });

  it("asks before deleting, then deletes and audits", async () => {
    const doomed = await createViaApi({
      name: "Doomed",
      type: "REST_API",
      configuration: { endpoint: "https://example.com/x" },
    });
    const confirm = await get(`/data-sources/${doomed}/delete`);
    expect(confirm.text).toContain("Delete Doomed?");
    const deleted = await post(`/data-sources/${doomed}/delete`, {});
    expect(deleted.status).toBe(303);
    expect(deleted.headers.get("location")).toBe("/data-sources");
    expect((await get(`/data-sources/${doomed}`)).status).toBe(404);
    const audit = await t.call(
      "GET",
      `/api/audit-logs?entityId=${doomed}&action=DATA_SOURCE_DELETE`,
      {
        cookie: admin,
      },
    );
    expect(audit.body).toHaveLength(1);
  });

  it("does not show another user's source", async () => {
    await t.user("other@example.com", "other-password");
    const cookie = await t.login("other@example.com", "other-password");
    expect((await get(`/data-sources/${id}`, { cookie })).status).toBe(403);
  });
});

describe("tokens, users and audit pages", () => {
  it("shows a new token once, keeps it out of caches, and revokes it", async () => {
    const empty = await post("/tokens", { name: "" });
    expect(empty.status).toBe(400);
    expect(empty.text).toContain("Name is required");

    const created = await post("/tokens", { name: "nightly export" });
    expect(created.status).toBe(200);
    expect(created.headers.get("cache-control")).toBe("no-store");
    const token = /value="(dds_[^"]+)"/.exec(created.text)?.[1];
    expect(token).toBeTruthy();
    expect(created.text).toContain('hx-history="false"');
    expect((await t.call("GET", "/api/auth/me", { token })).status).toBe(200);

    const list = await get("/tokens");
    expect(list.text).toContain("nightly export");
    expect(list.text).not.toContain(token!);

    const tokenId = /<tr id="token-([^"]+)"/.exec(list.text)![1];
    const revoked = await post(`/tokens/${tokenId}/revoke`, {}, { htmx: `token-${tokenId}` });
    expect(revoked.status).toBe(200);
    expect(revoked.text).toBe("");
    expect((await t.call("GET", "/api/auth/me", { token })).status).toBe(401);
    expect((await post(`/tokens/${tokenId}/revoke`, {})).status).toBe(404);
  });

  it("creates tokens with the lifetime chosen in the form", async () => {
    const form = await get("/tokens");
    expect(form.text).toMatch(/<option value="90" selected[^>]*>90 days</);
    const forever = await post("/tokens", { name: "no end", expires: "never" });
    expect(forever.status).toBe(200);
    const week = await post("/tokens", { name: "one week", expires: "7" });
    expect(week.status).toBe(200);
    const odd = await post("/tokens", { name: "odd", expires: "abc" });
    expect(odd.status).toBe(400);

    const rows = await t.call("GET", "/api/tokens", { cookie: admin });
    type Row = { id: string; name: string; expiresAt: string | null };
    const byName = new Map((rows.body as Row[]).map((row) => [row.name, row]));
    expect(byName.get("no end")!.expiresAt).toBeNull();
    const weekEnd = Date.parse(byName.get("one week")!.expiresAt!);
    expect(weekEnd - Date.now()).toBeGreaterThan(6 * 24 * 3600_000);
    expect(weekEnd - Date.now()).toBeLessThanOrEqual(7 * 24 * 3600_000);
    expect(byName.has("odd")).toBe(false);
    for (const row of rows.body as Row[]) await post(`/tokens/${row.id}/revoke`, {});
  });

  it("creates users, refuses a duplicate, and shows the last-admin refusal on its row", async () => {
    const invalid = await post("/users", { email: "nope", password: "short", role: "USER" });
    expect(invalid.status).toBe(400);
    expect(invalid.text).toContain("Must be an email address");
    expect(invalid.text).toContain("at least 8 characters");

    const created = await post("/users", {
      email: "analyst@example.com",
      password: "analyst-password",
      role: "USER",
    });
    expect(created.status).toBe(200);
    expect(created.text).toContain("Created analyst@example.com");
    const duplicate = await post("/users", {
      email: "analyst@example.com",
      password: "analyst-password",
      role: "USER",
    });
    expect(duplicate.text).toContain("already exists");

    const lastAdmin = await post(`/users/${adminId}/role`, { role: "USER" }, {
      htmx: `user-${adminId}`,
    });
    expect(lastAdmin.status).toBe(200);
    expect(lastAdmin.text.startsWith(`<tr id="user-${adminId}"`)).toBe(true);
    expect(lastAdmin.text).toContain("last administrator");

    const users = await t.call("GET", "/api/users", { cookie: admin });
    const analyst = users.body.find((user: { email: string }) =>
      user.email === "analyst@example.com"
    );
    const promoted = await post(`/users/${analyst.id}/role`, { role: "ADMIN" });
    expect(promoted.status).toBe(303);
    expect(
      (await t.call("GET", "/api/users", { cookie: admin })).body
        .find((user: { id: string }) => user.id === analyst.id).role,
    ).toBe("ADMIN");

    const removed = await post(`/users/${analyst.id}/delete`, {}, { htmx: `user-${analyst.id}` });
    expect(removed.status).toBe(200);
    expect(removed.text).toBe("");
  });

  it("refuses to remove a user who owns sources, on the row", async () => {
    const owner = await t.user("owner@example.com", "owner-password");
    const cookie = await t.login("owner@example.com", "owner-password");
    await t.call("POST", "/api/data-sources", {
      cookie,
      json: { name: "Owned", type: "REST_API", configuration: { endpoint: "https://example.com" } },
    });
    const refused = await post(`/users/${owner.id}/delete`, {});
    expect(refused.status).toBe(409);
    expect(refused.text).toContain("owns 1 data source");
    const inRow = await post(`/users/${owner.id}/delete`, {}, { htmx: `user-${owner.id}` });
    expect(inRow.status).toBe(200);
    expect(inRow.text.startsWith(`<tr id="user-${owner.id}"`)).toBe(true);
    expect(inRow.text).toContain("owns 1 data source");
  });

  it("keeps /users and /audit for administrators", async () => {
    await t.user("plain@example.com", "plain-password");
    const cookie = await t.login("plain@example.com", "plain-password");
    expect((await get("/users", { cookie })).status).toBe(403);
    expect((await get("/audit", { cookie })).status).toBe(403);
    expect((await get("/tokens", { cookie })).status).toBe(200);
    const nav = (await get("/data-sources", { cookie })).text;
    expect(nav).not.toContain('href="/users"');
  });

  it("filters the audit log by action, user and date, as a page and as a fragment", async () => {
    const all = await get("/audit");
    expect(all.status).toBe(200);
    expect(all.text).toContain('<option value="TOKEN_CREATE"');
    const tokens = await get("/audit?action=TOKEN_CREATE", { htmx: "audit-results" });
    expect(tokens.text).not.toContain("<html");
    expect(tokens.text).toContain("TOKEN_CREATE");
    expect(tokens.text).not.toContain("DATA_SOURCE_CREATE");
    expect(tokens.text).toContain("nightly export");

    const today = new Date().toISOString().slice(0, 10);
    const byDay = await get(`/audit?from=${today}&to=${today}&userId=${adminId}`);
    expect(byDay.text).toContain("TOKEN_CREATE");
    const future = await get("/audit?from=2999-01-01");
    expect(future.text).toContain("No audit entries match");
    const bad = await get("/audit?from=yesterday&page=x");
    expect(bad.status).toBe(200);
  });
});

describe("account page", () => {
  const OLD = "acct-old-pw-5b1e";
  const NEW = "acct-new-pw-8c2d";
  const RESET = "acct-reset-pw-3f9a";

  function change(cookie: string, fields: Record<string, string>, htmx?: string) {
    recordSecrets(Object.values(fields));
    return post("/account/password", fields, { cookie, htmx });
  }

  it("is linked from the signed-in user's email in every page's header", async () => {
    const list = await get("/data-sources");
    expect(list.text).toMatch(/<a class="user-email" href="\/account"[^>]*>admin@example.com<\/a>/);
    const page = await get("/account");
    expect(page.status).toBe(200);
    expect(page.text).toContain("Signed in as <strong>admin@example.com</strong>");
    expect(page.text).toMatch(/<a class="user-email" href="\/account"[^>]*aria-current="page"/);
    expect(page.text).toContain(
      '<form id="password-form" method="post" action="/account/password"',
    );
    for (const name of ["currentPassword", "newPassword", "confirmPassword"]) {
      expect(input(page.text, name)).toContain('type="password"');
    }
  });

  it("renders each error next to its field, without echoing a password, and changes nothing", async () => {
    recordSecrets([OLD]);
    await t.user("account@example.com", OLD);
    const cookie = await t.login("account@example.com", OLD);
    const short = await change(cookie, {
      currentPassword: OLD,
      newPassword: "short",
      confirmPassword: "short",
    });
    expect(short.status).toBe(400);
    expect(short.text).toContain("<html");
    expect(short.text).toMatch(
      /id="newPassword-error"[^>]*>Password must be at least 8 characters/,
    );
    expect(input(short.text, "newPassword")).toContain('aria-invalid="true"');

    const differ = await change(cookie, {
      currentPassword: OLD,
      newPassword: NEW,
      confirmPassword: `${NEW}x`,
    });
    expect(differ.status).toBe(400);
    expect(differ.text).toContain("The two new passwords differ");

    const wrong = await change(cookie, {
      currentPassword: "not-my-password-1",
      newPassword: NEW,
      confirmPassword: NEW,
    }, "password-form");
    // htmx gets the form alone, as 200 (htmx swaps only successful answers).
    expect(wrong.status).toBe(200);
    expect(wrong.text.startsWith('<form id="password-form"')).toBe(true);
    expect(wrong.text).toMatch(/id="currentPassword-error"[^>]*>Current password is incorrect/);
    for (const reply of [short, differ, wrong]) {
      expect(reply.text).not.toContain(OLD);
      expect(reply.text).not.toContain(NEW);
    }
    expect(
      (await t.call("POST", "/api/auth/login", {
        json: { email: "account@example.com", password: OLD },
      })).status,
    ).toBe(200);
  });

  it("changes the password, keeps this session and signs the others out", async () => {
    const cookie = await t.login("account@example.com", OLD);
    const other = await t.login("account@example.com", OLD);
    const changed = await change(cookie, {
      currentPassword: OLD,
      newPassword: NEW,
      confirmPassword: NEW,
    }, "password-form");
    expect(changed.status).toBe(200);
    expect(changed.text.startsWith('<form id="password-form"')).toBe(true);
    expect(changed.text).toMatch(/role="status">Password changed\. Other sessions signed out: \d+/);
    expect(changed.text).not.toContain(NEW);
    expect((await get("/account", { cookie })).status).toBe(200);
    expect((await get("/account", { cookie: other })).status).toBe(302);
    const login = (password: string) =>
      t.call("POST", "/api/auth/login", { json: { email: "account@example.com", password } });
    expect((await login(OLD)).status).toBe(401);
    expect((await login(NEW)).status).toBe(200);

    // Without JavaScript: the whole page with the notice.
    const again = await change(cookie, {
      currentPassword: NEW,
      newPassword: OLD,
      confirmPassword: OLD,
    });
    expect(again.status).toBe(200);
    expect(again.text).toContain("<html");
    expect(again.text).toContain("Password changed.");
  });

  it("lets an administrator set a user's password from /users, ending their sessions", async () => {
    recordSecrets([RESET]);
    const target = await t.user("reset-me@example.com", OLD);
    const cookie = await t.login("reset-me@example.com", OLD);
    const users = await get("/users");
    expect(users.text).toContain(`action="/users/${target.id}/password"`);
    // Your own password is changed on /account, where the current one is asked for.
    expect(users.text).not.toContain(`action="/users/${adminId}/password"`);
    expect(users.text).toContain('<a href="/account" class="small">');

    const short = await post(`/users/${target.id}/password`, { password: "short" }, {
      htmx: `user-${target.id}`,
    });
    expect(short.status).toBe(200);
    expect(short.text.startsWith(`<tr id="user-${target.id}"`)).toBe(true);
    expect(short.text).toContain("Password must be at least 8 characters");
    expect(short.text).toMatch(/<details class="set-password" open/);
    expect((await get("/account", { cookie })).status).toBe(200);

    const set = await post(`/users/${target.id}/password`, { password: RESET }, {
      htmx: `user-${target.id}`,
    });
    expect(set.status).toBe(200);
    expect(set.text.startsWith(`<tr id="user-${target.id}"`)).toBe(true);
    expect(set.text).toContain("Password set; their sessions were signed out.");
    expect(set.text).not.toContain(RESET);
    expect((await get("/account", { cookie })).status).toBe(302);
    expect(
      (await t.call("POST", "/api/auth/login", {
        json: { email: "reset-me@example.com", password: RESET },
      })).status,
    ).toBe(200);

    const plain = await post(`/users/${target.id}/password`, { password: OLD });
    expect(plain.status).toBe(200);
    expect(plain.text).toContain("Password set for reset-me@example.com");
    const unknown = await post("/users/aaaaaaaaaaaaaaaaaaaaaaaa/password", { password: RESET });
    expect(unknown.status).toBe(404);
    const audit = await t.call("GET", `/api/audit-logs?entityId=${target.id}&action=USER_UPDATE`, {
      cookie: admin,
    });
    expect(audit.body).toHaveLength(2);
    expect(audit.body[0].metadata).toMatchObject({ passwordChanged: true });
  });
});

describe("sessions", () => {
  it("sends an expired session to /login and back, with HX-Redirect for htmx", async () => {
    const page = await t.call("GET", "/data-sources?search=x");
    expect(page.status).toBe(302);
    expect(page.headers.get("location")).toBe("/login?next=%2Fdata-sources%3Fsearch%3Dx");
    const fragment = await t.call("GET", "/data-sources?search=x", {
      headers: {
        "hx-request": "true",
        "hx-target": "source-results",
        "hx-current-url": "http://localhost/data-sources/abc",
      },
    });
    expect(fragment.status).toBe(200);
    expect(fragment.headers.get("hx-redirect")).toBe("/login?next=%2Fdata-sources%2Fabc");
  });
});
