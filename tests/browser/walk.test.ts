/**
 * A walk through the real app in Chromium, as an administrator would take it on the first
 * day: set up, sign in, add the demo PostgreSQL database with the wizard and test it, browse
 * its schema and rows, meet a wrong password and an invalid form, search, create and revoke
 * a token, lose the session and come back, log out. The steps share one page and run in
 * order; screenshots of each page go to SCREENSHOT_DIR (or a temporary folder).
 */
import { eq } from "drizzle-orm";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataSources, sessions } from "../../db/schema.ts";
import {
  launchBrowser,
  type Problems,
  type RunningApp,
  screenshotDir,
  startRealApp,
} from "./_browser.ts";

/** The fixture role of .ci/fixtures.sh: a password PostgreSQL really checks (scram-sha-256). */
const SCRAM_ROLE = "dafel_t_scram";
const ADMIN = { email: "admin@example.com", password: "walk-admin-password" };

let app: RunningApp;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let page: Page;
let shots: string;
let demoSourceId: string;

beforeAll(async () => {
  [app, browser] = await Promise.all([startRealApp(), launchBrowser()]);
  page = await browser.newPage(app.baseUrl);
  shots = await screenshotDir();
});

afterAll(async () => {
  await browser?.browser.close();
  await app?.stop();
});

async function shoot(name: string, options: { fullPage?: boolean } = {}) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: options.fullPage ?? true });
}

async function heading(text: string | RegExp) {
  await page.getByRole("heading", { level: 1, name: text }).waitFor();
}

function field(name: string) {
  return page.locator(`[name="${name}"]`);
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
