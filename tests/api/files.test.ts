/**
 * `POST /api/files` and `GET /api/files`: uploads land in FILES_DIR under a sanitized name,
 * never replace a file, stop at the size limit, and need a signed-in user; an uploaded file
 * is then a working CSV source.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_UPLOAD_BYTES, sanitizeFileName } from "../../routes/files.ts";
import { startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
let cookie: string;
let token: string;

beforeAll(async () => {
  t = await startTestApp();
  await t.user("uploader@example.com", "uploader-password", "USER");
  cookie = await t.login("uploader@example.com", "uploader-password");
  token = (await t.token(cookie)).token;
});

afterAll(async () => {
  await t.close();
});

function form(name: string, content: string) {
  const body = new FormData();
  body.append("file", new File([content], name, { type: "text/csv" }));
  return body;
}

async function stored(path: string): Promise<string> {
  return await Deno.readTextFile(`${t.deps.config.filesDir}/${path}`);
}

describe("file uploads", () => {
  it("stores an upload in the files directory and answers its relative path", async () => {
    const reply = await t.call("POST", "/api/files", {
      token,
      body: form("customers.csv", "id,name\n1,Ada\n"),
    });
    expect(reply.status, reply.text).toBe(201);
    expect(reply.body).toMatchObject({ path: "customers.csv", size: 14, renamed: false });
    expect(await stored("customers.csv")).toBe("id,name\n1,Ada\n");
  });

  it("never overwrites a file: a second upload of one name gets a suffix", async () => {
    await t.call("POST", "/api/files", { token, body: form("orders.csv", "first\n") });
    const reply = await t.call("POST", "/api/files", {
      token,
      body: form("orders.csv", "second\n"),
    });
    expect(reply.status).toBe(201);
    expect(reply.body).toMatchObject({ path: "orders-2.csv", renamed: true });
    expect(await stored("orders.csv")).toBe("first\n");
    expect(await stored("orders-2.csv")).toBe("second\n");
  });

  it("sanitizes a hostile name into a plain file name inside the directory", async () => {
    const reply = await t.call("POST", "/api/files", {
      token,
      body: form("../../etc/.evil <name>|rm -rf.csv", "a\n1\n"),
    });
    expect(reply.status, reply.text).toBe(201);
    const path: string = reply.body.path;
    expect(path).toBe("evil _name_rm -rf.csv");
    expect(path).not.toMatch(/[\\/]|\.\./);
    expect(await stored(path)).toBe("a\n1\n");
    expect(reply.body.renamed).toBe(true);
  });

  it("keeps names tidy: no folders, hidden files, control characters or endless length", () => {
    expect(sanitizeFileName("C:\\Users\\me\\Sales Q1.csv")).toBe("Sales Q1.csv");
    expect(sanitizeFileName(".hidden.csv")).toBe("hidden.csv");
    expect(sanitizeFileName("-rf.csv")).toBe("rf.csv");
    expect(sanitizeFileName("bell\u0007\u0000null.csv")).toBe("bellnull.csv");
    expect(sanitizeFileName("Zürich données.csv")).toBe("Zürich données.csv");
    expect(sanitizeFileName(`${"x".repeat(300)}.csv`)).toHaveLength(120);
    expect(sanitizeFileName(`${"x".repeat(300)}.csv`).endsWith(".csv")).toBe(true);
  });

  it("refuses files that are not CSV, TSV or text", async () => {
    const reply = await t.call("POST", "/api/files", { token, body: form("tool.exe", "MZ") });
    expect(reply.status).toBe(400);
    expect(reply.body.details[0].path).toBe("file");
  });

  it("answers 400 without a file field", async () => {
    const body = new FormData();
    body.append("other", "value");
    const reply = await t.call("POST", "/api/files", { token, body });
    expect(reply.status).toBe(400);
    expect(reply.body.code).toBe("VALIDATION_ERROR");
  });

  it("answers 413 for an upload over the limit, with or without a length, and stores nothing", async () => {
    const before = [...Deno.readDirSync(t.deps.config.filesDir)].length;
    const declared = await t.call("POST", "/api/files", {
      token,
      headers: {
        "content-type": "multipart/form-data; boundary=x",
        "content-length": String(DEFAULT_MAX_UPLOAD_BYTES + 1),
      },
      body: new Uint8Array(16),
    });
    expect(declared.status).toBe(413);
    expect(declared.body.code).toBe("PAYLOAD_TOO_LARGE");

    // A streamed body with no length: counted as it arrives, refused once past the limit.
    const chunk = new Uint8Array(1024 * 1024);
    let sent = 0;
    const streamed = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > DEFAULT_MAX_UPLOAD_BYTES) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const reply = await t.call("POST", "/api/files", {
      token,
      headers: { "content-type": "multipart/form-data; boundary=x" },
      body: streamed,
    });
    expect(reply.status).toBe(413);
    expect([...Deno.readDirSync(t.deps.config.filesDir)].length).toBe(before);
  });

  it("still limits other API bodies to 1 MiB", async () => {
    const reply = await t.call("POST", "/api/tokens", {
      token,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x".repeat(1024 * 1024 + 10) }),
    });
    expect(reply.status).toBe(413);
  });

  it("needs a signed-in user", async () => {
    const upload = await t.call("POST", "/api/files", { body: form("anon.csv", "a\n") });
    expect(upload.status).toBe(401);
    const list = await t.call("GET", "/api/files");
    expect(list.status).toBe(401);
    await expect(Deno.stat(`${t.deps.config.filesDir}/anon.csv`)).rejects.toThrow();
  });

  it("lists the stored files with their sizes", async () => {
    const reply = await t.call("GET", "/api/files", { cookie });
    expect(reply.status).toBe(200);
    const paths = reply.body.map((file: { path: string }) => file.path);
    expect(paths).toEqual(expect.arrayContaining(["customers.csv", "orders.csv", "orders-2.csv"]));
    expect(paths.some((path: string) => path.startsWith("."))).toBe(false);
    expect(reply.body.find((f: { path: string }) => f.path === "customers.csv").size).toBe(14);
  });

  it("makes an uploaded file a CSV source that connects and previews", async () => {
    const upload = await t.call("POST", "/api/files", {
      token,
      body: form("people.csv", "id,name,score\n1,Ada,9.5\n2,Grace,8\n"),
    });
    const created = await t.call("POST", "/api/data-sources", {
      token,
      json: { name: "People", type: "CSV_FILE", configuration: { filePath: upload.body.path } },
    });
    expect(created.status, created.text).toBe(201);
    const tested = await t.call("POST", `/api/data-sources/${created.body.id}/test`, { token });
    expect(tested.status).toBe(200);
    expect(tested.body.success, JSON.stringify(tested.body.error)).toBe(true);
    expect(tested.body.schema).toEqual([{ tableName: "people", columns: 3, rowCount: 2 }]);
    const preview = await t.call(
      "GET",
      `/api/data-sources/${created.body.id}/preview?table=people&limit=1`,
      { token },
    );
    expect(preview.body.rows).toEqual([{ id: "1", name: "Ada", score: "9.5" }]);
  });

  it("records the upload in the audit log", async () => {
    await t.user("auditor@example.com", "auditor-password", "ADMIN");
    const admin = await t.login("auditor@example.com", "auditor-password");
    const reply = await t.call("GET", "/api/audit-logs?action=FILE_UPLOAD", { cookie: admin });
    expect(reply.status).toBe(200);
    const entries = Array.isArray(reply.body) ? reply.body : reply.body.logs ?? reply.body.items;
    expect(entries.map((entry: { entityId: string }) => entry.entityId)).toContain("customers.csv");
  });
});
