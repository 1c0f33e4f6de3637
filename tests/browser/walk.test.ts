/**
 * A walk through the real app in Chromium, as an administrator would take it on the first
 * day: set up, sign in, add the demo PostgreSQL database with the wizard and test it, browse
 * its schema and rows, meet a wrong password and an invalid form, search, add one source of
 * each other type (MongoDB, REST, GraphQL, S3, Google Sheets, an uploaded CSV file) against
 * real servers on loopback, upload a file without JavaScript, create and revoke a token,
 * lose the session and come back, log out. The steps share one page and run in order;
 * screenshots of each page go to SCREENSHOT_DIR (or a temporary folder).
 */
import { eq } from "drizzle-orm";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { dataSources, sessions } from "../../db/schema.ts";
import {
  launchBrowser,
  type Problems,
  type RunningApp,
  screenshotDir,
  startRealApp,
} from "./_browser.ts";
import { customersCsv, type RemoteSources, startRemoteSources } from "./_remote_sources.ts";

/** The fixture role of .ci/fixtures.sh: a password PostgreSQL really checks (scram-sha-256). */
const SCRAM_ROLE = "dafel_t_scram";
const ADMIN = { email: "admin@example.com", password: "walk-admin-password" };

let app: RunningApp;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;
let shots: string;
let demoSourceId: string;
let remote: RemoteSources;
/** Files the walk uploads from, as a user's downloads folder. */
let downloads: string;

beforeAll(async () => {
  [app, browser, remote] = await Promise.all([
    startRealApp({
      // The API connectors may reach the test servers on loopback (the guard's own switch).
      ALLOW_PRIVATE_NETWORKS: "true",
      // The walk tests about twenty connections in a few minutes; the limit has its own tests.
      CONNECTION_TESTS_PER_MINUTE: "100",
    }),
    launchBrowser(),
    startRemoteSources(),
  ]);
  page = await browser.newPage(app.baseUrl);
  shots = await screenshotDir();
  downloads = await Deno.makeTempDir({ prefix: "dafel-walk-downloads-" });
});

// A step that fails says where the page was and what it showed, and keeps a picture of it:
// a timeout alone does not tell which wait never ended.
beforeEach((context) => {
  context.onTestFailed(async () => {
    if (!page) return;
    const text = await page.locator("main").innerText({ timeout: 2_000 }).catch(() => "");
    console.error(`walk step failed at ${page.url()}; the page showed:\n${text.slice(0, 2_000)}`);
    await page.screenshot({ path: `${shots}/failed-step.png`, fullPage: true }).catch(() => {});
  });
});

afterAll(async () => {
  await browser?.browser.close();
  await app?.stop();
  await remote?.close();
  if (downloads) await Deno.remove(downloads, { recursive: true });
});

async function shoot(name: string, options: { fullPage?: boolean } = {}) {
  // Transitions run to their end first: no half-faded "Testing…" in a picture.
  await page.screenshot({
    path: `${shots}/${name}.png`,
    fullPage: options.fullPage ?? true,
    animations: "disabled",
  });
}

async function heading(text: string | RegExp) {
  await page.getByRole("heading", { level: 1, name: text }).waitFor();
}

function field(name: string) {
  return page.locator(`[name="${name}"]`);
}

/** Step 2 of the wizard for a type, reached from its card. */
async function openWizard(type: string, title: string) {
  await page.goto("/data-sources/new");
  await heading("New data source");
  await page.locator(`.type-card[data-type="${type}"]`).click();
  await heading(title);
}

/** "Test connection" in the wizard: a success, each of its stages passed. */
async function testInWizard() {
  await page.locator(".form-actions").getByRole("button", { name: "Test connection" }).click();
  const result = page.locator('#test-result [data-outcome="success"]');
  await result.waitFor();
  await expect(result.locator("[data-stage]").count()).resolves.toBeGreaterThan(1);
  await expect(result.locator("[data-stage].failed").count()).resolves.toBe(0);
}

/**
 * Saves the wizard, then tests the saved source with its page's button: connected, and the
 * stream it read shows in the schema. The secret typed in the wizard is nowhere on the page.
 */
async function saveAndTestOnItsPage(options: { name: string; stream: string; secret?: string }) {
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await heading(options.name);
  await page.locator(".test-form").getByRole("button", { name: "Test connection" }).click();
  await page.locator('#test-result [data-outcome="success"]').waitFor();
  await page.locator("#status-facts").getByText("Connected").waitFor();
  await page.locator("#schema-tables .table-name", { hasText: options.stream }).first().waitFor();
  if (options.secret) expect(await page.content()).not.toContain(options.secret);
  return new URL(page.url()).pathname.split("/").pop()!;
}

function noProblems(problems: Problems) {
  expect(problems.page, "uncaught errors in the page").toEqual([]);
  expect(problems.console, "errors in the console").toEqual([]);
}

describe("an administrator's first walk through the app", () => {
  it("creates the first administrator on /setup", async () => {
    await page.goto("/");
    await heading("Welcome");
    expect(new URL(page.url()).pathname).toBe("/setup");
    await shoot("01-setup");
    await field("email").fill(ADMIN.email);
    await field("password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Create administrator" }).click();
    await heading("Data sources");
    await page.getByText("Connect your first data source").waitFor();
    await shoot("02-empty-list");
  });

  it("logs out and signs in again", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await heading("Sign in");
    await shoot("03-login");
    await field("email").fill(ADMIN.email);
    await field("password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await heading("Data sources");
    await expect(page.locator(".user-email").textContent()).resolves.toBe(ADMIN.email);
  });

  it("adds the demo PostgreSQL database with the wizard and tests it before saving", async () => {
    await page.getByRole("link", { name: "Add a data source" }).click();
    await heading("New data source");
    expect(await page.locator(".type-card").count()).toBe(8);
    await shoot("04-wizard-types");
    await page.locator('.type-card[data-type="POSTGRESQL"]').click();
    await heading("New PostgreSQL source");
    expect(await field("port").inputValue()).toBe("5432");
    await page.getByRole("button", { name: "Use Demo Database" }).click();
    await page.waitForFunction(`document.querySelector('[name="host"]').value === "127.0.0.1"`);
    const demo = app.running.deps.demo!;
    expect(await field("port").inputValue()).toBe(String(demo.port));
    expect(await field("database").inputValue()).toBe(demo.database);
    expect(await field("name").inputValue()).toBe("Demo store");
    // The demo password stays on the server: the field is empty and says so.
    expect(await field("password").inputValue()).toBe("");
    expect(await field("password").getAttribute("value")).toBeNull();
    await page.getByText("Leave blank to use the demo database's password").waitFor();

    await page.getByRole("button", { name: "Test connection" }).click();
    const result = page.locator('#test-result [data-outcome="success"]');
    await result.waitFor();
    for (const stage of ["connect", "authenticate", "query"]) {
      const item = result.locator(`[data-stage="${stage}"]`);
      await expect(item.getAttribute("class")).resolves.toBe("ok");
      expect(await item.locator(".stage-ms").textContent()).toMatch(/\d+ ms|reused/);
    }
    await expect(result.textContent()).resolves.toContain("Connected");
    await shoot("05-wizard-demo-tested");

    await page.getByRole("button", { name: "Save", exact: true }).click();
    await heading("Demo store");
    demoSourceId = new URL(page.url()).pathname.split("/").pop()!;
    const [row] = await app.running.deps.db.select().from(dataSources)
      .where(eq(dataSources.id, demoSourceId));
    expect(row).toMatchObject({ name: "Demo store", type: "POSTGRESQL", port: demo.port });
  });

  it("tests the saved source: stages, status, chart and the discovered schema", async () => {
    await page.locator(".test-form").getByRole("button", { name: "Test connection" }).click();
    await page.locator('#test-result [data-outcome="success"]').waitFor();
    await page.locator("#status-facts").getByText("Connected").waitFor();
    await page.locator("#response-chart svg circle").first().waitFor();
    await page.locator("#table-public-orders").waitFor();
    for (const table of ["customers", "products", "orders", "order_items"]) {
      await page.locator(`#table-public-${table}`).waitFor();
    }
    // Two more tests: each adds a point to the chart, swapped in without a reload.
    for (const points of [2, 3]) {
      await page.locator(".test-form").getByRole("button", { name: "Test connection" }).click();
      await page.locator("#response-chart svg circle").nth(points - 1).waitFor();
    }
    await expect(page.locator("#response-chart figcaption").textContent()).resolves.toMatch(
      /^3 tests from/,
    );
    await shoot("06-source-detail");
    await shoot("06-source-detail-top", { fullPage: false });
  });

  it("browses the schema: keys, a foreign key to its table, the filter box", async () => {
    const items = page.locator("#table-public-order_items");
    await expect(items.locator(".key.pk").count()).resolves.toBeGreaterThan(0);
    const link = items.locator("a.key.fk", { hasText: "orders.id" });
    expect(await link.getAttribute("href")).toBe("#table-public-orders");
    await link.click();
    await page.waitForURL(/#table-public-orders$/);

    await page.getByPlaceholder("Filter tables and columns").fill("sku");
    await page.locator("#schema-count", { hasText: "match" }).waitFor();
    await expect(page.locator("#schema-tables .table-card").count()).resolves.toBe(1);
    await expect(page.locator("#schema-tables .table-name").textContent()).resolves.toBe(
      "public.products",
    );
    await page.locator("#schema").screenshot({ path: `${shots}/07-schema-filtered.png` });
    await page.getByPlaceholder("Filter tables and columns").fill("");
    await page.locator("#schema-count", { hasText: /^\d+ tables$/ }).waitFor();
  });

  it("previews the rows of a table", async () => {
    await page.locator("#preview select[name=table]").selectOption("public.customers");
    await page.locator("#preview").getByRole("button", { name: "Show rows" }).click();
    const grid = page.locator("#preview-grid table.preview");
    await grid.waitFor();
    await expect(grid.locator("tbody tr").count()).resolves.toBe(50);
    await expect(grid.locator("thead").textContent()).resolves.toContain("email");
    await expect(grid.locator("tbody").textContent()).resolves.toContain("@example.com");
    await page.locator("#preview").screenshot({ path: `${shots}/08-preview.png` });
  });

  it("shows AUTH_FAILED with its hint next to the password for a wrong password", async () => {
    await page.goto("/data-sources/new?type=POSTGRESQL");
    await heading("New PostgreSQL source");
    await field("name").fill("Warehouse (wrong password)");
    await field("host").fill("127.0.0.1");
    await field("port").fill("5432");
    await field("database").fill("test");
    await field("username").fill(SCRAM_ROLE);
    await field("password").fill("certainly-not-the-password");
    await page.getByRole("button", { name: "Test connection" }).click();
    const failure = page.locator('#test-result [data-outcome="failure"]');
    await failure.waitFor();
    await expect(failure.locator(".error-code").textContent()).resolves.toBe("AUTH_FAILED");
    const hint = await failure.locator(".hint").textContent();
    expect(hint).toBeTruthy();
    await expect(page.locator("#hint-password").textContent()).resolves.toBe(hint);
    await expect(failure.locator('[data-stage="authenticate"]').getAttribute("class")).resolves
      .toBe("failed");
    await shoot("09-wizard-auth-failed");
  });

  it("renders the errors of an invalid form inline and keeps the typed password", async () => {
    await field("name").fill("");
    await field("host").fill("");
    await field("port").fill("70000");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await page.locator("#form-errors").waitFor();
    await expect(field("name").getAttribute("aria-invalid")).resolves.toBe("true");
    await expect(field("host").getAttribute("aria-invalid")).resolves.toBe("true");
    await expect(field("port").getAttribute("aria-invalid")).resolves.toBe("true");
    await expect(page.locator("#f-name-error").textContent()).resolves.toBe("Name is required");
    await expect(page.locator("#f-host-error").textContent()).resolves.toBe("Host is required");
    expect(await field("password").inputValue()).toBe("certainly-not-the-password");
    await shoot("10-wizard-inline-errors");

    // Fixed, it saves; the stored source then fails its test the same way.
    await field("name").fill("Warehouse (wrong password)");
    await field("host").fill("127.0.0.1");
    await field("port").fill("5432");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await heading("Warehouse (wrong password)");
    await page.locator(".test-form").getByRole("button", { name: "Test connection" }).click();
    const failure = page.locator('#test-result [data-outcome="failure"]');
    await failure.waitFor();
    await expect(failure.locator(".error-code").textContent()).resolves.toBe("AUTH_FAILED");
    await failure.getByRole("link", { name: "Password" }).waitFor();
    await page.locator("#status-facts").getByText("Error", { exact: true }).waitFor();
  });

  it("edits a source without ever showing its secret", async () => {
    await page.getByRole("link", { name: "Edit", exact: true }).click();
    await heading(/^Edit /);
    await expect(field("password").getAttribute("placeholder")).resolves.toBe(
      "stored — leave blank to keep",
    );
    expect(await field("password").inputValue()).toBe("");
    await field("description").fill("Reporting copy; password to be fixed");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByText("Reporting copy; password to be fixed").waitFor();
  });

  it("searches the list as you type and keeps the URL in sync", async () => {
    await page.locator("nav[aria-label=Main]").getByRole("link", { name: "Data sources" }).click();
    await heading("Data sources");
    await expect(page.locator("#source-rows tr").count()).resolves.toBe(2);
    await shoot("11-list");
    await page.getByPlaceholder("Search by name or description").fill("demo");
    await page.waitForURL(/\/data-sources\?search=demo/);
    await page.locator("#source-count", { hasText: "1–1 of 1" }).waitFor();
    await expect(page.locator("#source-rows").textContent()).resolves.toContain("Demo store");
    await page.locator("select[name=status]").selectOption("ERROR");
    await page.locator("#source-rows", { hasText: "No data sources match" }).waitFor();
    await page.locator("select[name=status]").selectOption("");
    await page.getByPlaceholder("Search by name or description").fill("");
    await page.locator("#source-count", { hasText: "of 2" }).waitFor();
  });

  it("adds a MongoDB source through the wizard and tests it on its page", async () => {
    await openWizard("MONGODB", "New MongoDB source");
    await field("name").fill("CRM (MongoDB)");
    await field("host").fill(remote.mongo.host);
    await field("port").fill(String(remote.mongo.port));
    await field("database").fill(remote.mongo.database);
    await field("username").fill(remote.mongo.username);
    await field("password").fill(remote.mongo.password);
    await page.getByText("More settings").click();
    await field("configuration.authSource").fill("admin");
    await testInWizard();
    await saveAndTestOnItsPage({
      name: "CRM (MongoDB)",
      stream: "customers",
      secret: remote.mongo.password,
    });
    // Discovery read nested documents: their field paths are columns.
    await page.locator("#schema-tables").getByText("address.country").first().waitFor();
    await expect(page.locator("#response-chart figcaption").textContent()).resolves.toMatch(
      /^1 test at .*: \d+ ms\.$/,
    );
    // Tall enough for the overview and the nested columns, without the sections below.
    await page.setViewportSize({ width: 1280, height: 1300 });
    await shoot("16-mongodb-detail", { fullPage: false });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it("adds a REST API source with bearer auth, a header row and pagination, and tests it", async () => {
    await openWizard("REST_API", "New REST API source");
    await field("name").fill("Customers API");
    await field("configuration.endpoint").fill(remote.rest.endpoint);
    await field("configuration.auth.type").selectOption("bearer");
    await field("apiKey").fill(remote.rest.token);
    await field("configuration.headers.0.name").fill("X-Tenant");
    await field("configuration.headers.0.value").fill(remote.rest.tenant);
    await field("configuration.recordsPath").fill("data.items");
    await field("configuration.pagination.type").selectOption("page");
    await field("configuration.pagination.pageSize").fill("2");
    await testInWizard();
    await saveAndTestOnItsPage({
      name: "Customers API",
      stream: "customers",
      secret: remote.rest.token,
    });
    const [row] = await app.running.deps.db.select().from(dataSources)
      .where(eq(dataSources.name, "Customers API"));
    expect(row.configuration).toMatchObject({
      recordsPath: "data.items",
      auth: { type: "bearer" },
      headers: [{ name: "X-Tenant", value: "acme", secret: false }],
      pagination: { type: "page", pageSize: 2 },
    });
  });

  it("adds a GraphQL source with a query typed in its text area, and tests it", async () => {
    await openWizard("GRAPHQL", "New GraphQL API source");
    await field("name").fill("Customers GraphQL");
    await field("configuration.endpoint").fill(remote.graphql.endpoint);
    await field("configuration.auth.type").selectOption("bearer");
    await field("apiKey").fill(remote.graphql.token);
    // The query is optional (introspection finds the streams), so it waits under the fold.
    await page.getByText("More settings").click();
    const query = page.locator('textarea[name="configuration.query"]');
    await query.fill("{\n  customers {\n    id\n    name\n    email\n  }\n}");
    await testInWizard();
    await saveAndTestOnItsPage({
      name: "Customers GraphQL",
      stream: "customers",
      secret: remote.graphql.token,
    });
  });

  it("adds an S3 source against s3rver and tests it", async () => {
    await openWizard("S3", "New Amazon S3 source");
    await field("name").fill("Exports bucket");
    await field("configuration.bucketName").fill(remote.s3.bucket);
    await field("configuration.region").fill("us-east-1");
    await field("configuration.accessKey").fill(remote.s3.accessKey);
    await field("configuration.secretKey").fill(remote.s3.secretKey);
    await field("configuration.endpoint").fill(remote.s3.endpoint);
    await field("configuration.forcePathStyle").check();
    await testInWizard();
    await saveAndTestOnItsPage({
      name: "Exports bucket",
      // s3rver's secret is its access key too, which the page shows as it should.
      stream: "customers",
    });
  });

  it("adds a Google Sheets source with pasted service-account JSON and tests it", async () => {
    await openWizard("GOOGLE_SHEETS", "New Google Sheets source");
    await field("name").fill("Team sheet");
    await field("configuration.spreadsheetId").fill(remote.sheets.spreadsheetId);
    const credentials = page.locator('textarea[name="configuration.credentials"]');
    await credentials.fill(remote.sheets.credentials);
    await page.getByText("More settings").click();
    await field("configuration.apiEndpoint").fill(remote.sheets.apiEndpoint);
    await testInWizard();
    const privateKey = JSON.parse(remote.sheets.credentials).private_key as string;
    await saveAndTestOnItsPage({
      name: "Team sheet",
      stream: "Customers",
      secret: privateKey.split("\n")[1],
    });
  });

  it("adds a CSV source from a file uploaded in the wizard, after choosing from the list", async () => {
    const filesDir = app.running.deps.config.filesDir;
    await Deno.mkdir(`${filesDir}/archive`, { recursive: true });
    await Deno.writeTextFile(`${filesDir}/archive/2025.csv`, "id,total\n1,10\n");
    await Deno.writeTextFile(`${downloads}/customers.csv`, customersCsv());

    await openWizard("CSV_FILE", "New CSV file source");
    await field("name").fill("Customers file");
    // The buttons that post the file without JavaScript give way to the script.
    await expect(page.getByRole("button", { name: "Upload", exact: true }).isVisible()).resolves
      .toBe(false);
    const path = field("configuration.filePath");
    await field("pick.configuration.filePath").selectOption("archive/2025.csv");
    await expect(path.inputValue()).resolves.toBe("archive/2025.csv");

    await field("upload.configuration.filePath").setInputFiles(`${downloads}/customers.csv`);
    await page.locator(".upload-status", { hasText: "Uploaded customers.csv" }).waitFor();
    await expect(path.inputValue()).resolves.toBe("customers.csv");
    await expect(field("pick.configuration.filePath").inputValue()).resolves.toBe(
      "customers.csv",
    );
    expect(await Deno.readTextFile(`${filesDir}/customers.csv`)).toBe(customersCsv());
    await testInWizard();
    await shoot("17-wizard-csv-uploaded");
    await saveAndTestOnItsPage({ name: "Customers file", stream: "customers" });
    await page.locator("#preview select[name=table]").selectOption("customers");
    await page.locator("#preview").getByRole("button", { name: "Show rows" }).click();
    await page.locator("#preview-grid table.preview tbody tr").nth(4).waitFor();
    await expect(page.locator("#preview-grid tbody").textContent()).resolves.toContain(
      "Grace Hopper",
    );
  });

  it("uploads a CSV file and saves its source in a browser without JavaScript", async () => {
    const plain = await browser.newPage(app.baseUrl, { javaScriptEnabled: false });
    try {
      await plain.goto("/data-sources/new?type=CSV_FILE");
      await plain.getByRole("heading", { level: 1, name: "Sign in" }).waitFor();
      await plain.locator('[name="email"]').fill(ADMIN.email);
      await plain.locator('[name="password"]').fill(ADMIN.password);
      await plain.getByRole("button", { name: "Sign in" }).click();
      await plain.getByRole("heading", { level: 1, name: "New CSV file source" }).waitFor();
      await plain.locator('[name="name"]').fill("Customers (no script)");
      await plain.locator('[name="upload.configuration.filePath"]').setInputFiles(
        `${downloads}/customers.csv`,
      );
      await plain.getByRole("button", { name: "Upload", exact: true }).click();
      await plain.getByText("Uploaded as customers-2.csv").waitFor();
      await expect(plain.locator('[name="configuration.filePath"]').inputValue()).resolves.toBe(
        "customers-2.csv",
      );
      await expect(plain.locator('[name="name"]').inputValue()).resolves.toBe(
        "Customers (no script)",
      );
      // Enter in a field saves the form (not the Upload button, which comes first).
      await plain.locator('[name="name"]').press("Enter");
      await plain.getByRole("heading", { level: 1, name: "Customers (no script)" }).waitFor();
      const [row] = await app.running.deps.db.select().from(dataSources)
        .where(eq(dataSources.name, "Customers (no script)"));
      expect(row.configuration).toMatchObject({ filePath: "customers-2.csv" });
    } finally {
      await plain.context().close();
    }
  });

  it("creates a token, shows it once, and revokes it", async () => {
    await page.getByRole("link", { name: "API tokens" }).click();
    await heading("API tokens");
    await field("name").fill("nightly export");
    await page.getByRole("button", { name: "Create token" }).click();
    const value = await page.locator("#new-token").inputValue();
    expect(value).toMatch(/^dds_/);
    await shoot("12-token-created");
    const me = (token: string) =>
      page.request.get("/api/auth/me", { headers: { authorization: `Bearer ${token}` } });
    expect((await me(value)).status()).toBe(200);

    await page.getByRole("button", { name: /Revoke/ }).click();
    await page.locator("tr", { hasText: "nightly export" }).waitFor({ state: "detached" });
    expect((await me(value)).status()).toBe(401);
    await page.reload();
    await heading("API tokens");
    expect(await page.content()).not.toContain(value);
  });

  it("adds a user, and refuses to demote the last administrator on its row", async () => {
    await page.getByRole("link", { name: "Users" }).click();
    await heading("Users");
    await page.getByLabel("Email").fill("analyst@example.com");
    await page.getByLabel("Initial password").fill("analyst-password");
    await page.getByRole("button", { name: "Create user" }).click();
    await page.getByText("Created analyst@example.com (USER).").waitFor();
    const adminRow = page.locator("#user-rows tr", { hasText: ADMIN.email });
    await adminRow.locator("select[name=role]").selectOption("USER");
    await page.locator("#user-rows [role=alert]", { hasText: "last administrator" }).waitFor();
    await expect(adminRow.locator("select[name=role]").inputValue()).resolves.toBe("ADMIN");
    await shoot("13-users");
  });

  it("sets a user's password on its row, and changes your own on /account, in place", async () => {
    const analystRow = page.locator("#user-rows tr", { hasText: "analyst@example.com" });
    await analystRow.getByText("Set password").click();
    await analystRow.locator("input[name=password]").fill("analyst-reset-password");
    await analystRow.getByRole("button", { name: "Set" }).click();
    await page.locator("#user-rows [role=status]", { hasText: "Password set" }).waitFor();

    await page.locator(".user-email").click();
    await heading("Account");
    const form = page.locator("#password-form");
    await form.getByLabel("Current password").fill("not-the-walk-password");
    await form.getByLabel("New password", { exact: true }).fill("walk-admin-changed-password");
    await form.getByLabel("New password again").fill("walk-admin-changed-password");
    await form.getByRole("button", { name: "Change password" }).click();
    await form.getByText("Current password is incorrect").waitFor();
    // The form came back in place, empty: no password is rendered into a page.
    expect(new URL(page.url()).pathname).toBe("/account");
    await expect(form.getByLabel("New password", { exact: true }).inputValue()).resolves.toBe("");
    await shoot("14-account-error");

    // Changed, and back, so the rest of the walk signs in as before.
    for (
      const [current, next] of [
        [ADMIN.password, "walk-admin-changed-password"],
        ["walk-admin-changed-password", ADMIN.password],
      ]
    ) {
      await form.getByLabel("Current password").fill(current);
      await form.getByLabel("New password", { exact: true }).fill(next);
      await form.getByLabel("New password again").fill(next);
      await form.getByRole("button", { name: "Change password" }).click();
      await form.locator("[role=status]", { hasText: "Password changed." }).waitFor();
      await form.locator("[role=status]").evaluate("(node) => node.remove()");
    }
  });

  it("filters the audit log by action", async () => {
    await page.getByRole("link", { name: "Audit log" }).click();
    await heading("Audit log");
    await page.locator("select[name=action]").selectOption("DATA_SOURCE_CONNECTION_TEST");
    await page.waitForURL(/action=DATA_SOURCE_CONNECTION_TEST/);
    await page.locator("#audit-results tbody tr").first().waitFor();
    await expect(page.locator("#audit-results tbody").textContent()).resolves.not.toContain(
      "TOKEN_CREATE",
    );
    await shoot("14-audit");
  });

  it("returns to /login when the session ends, and back to the page afterwards", async () => {
    await page.goto("/data-sources");
    await heading("Data sources");
    await app.running.deps.db.delete(sessions);
    await page.getByPlaceholder("Search by name or description").fill("ware");
    await heading("Sign in");
    expect(new URL(page.url()).searchParams.get("next")).toBe("/data-sources");
    await field("email").fill(ADMIN.email);
    await field("password").fill(ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await heading("Data sources");
    expect(new URL(page.url()).pathname).toBe("/data-sources");
  });

  it("fits a phone screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`/data-sources/${demoSourceId}`);
    await heading("Demo store");
    // Code run in the page is a string: the test's own type checking knows no DOM.
    const overflow = await page.evaluate(
      "document.documentElement.scrollWidth - document.documentElement.clientWidth",
    );
    expect(overflow).toBeLessThanOrEqual(0);
    await shoot("15-detail-phone", { fullPage: false });
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  it("logs out", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await heading("Sign in");
    await page.goto("/data-sources");
    await heading("Sign in");
  });

  it("saw no JavaScript error and no request outside the app during the walk", () => {
    noProblems(browser.problems);
  });
});
