/**
 * The sync section of the detail page: the slot htmx fills, the panel as a page and as a
 * fragment, "Sync now" with live status while a run is queued or running (and none once it
 * ended), cancel, the schedule form with its errors and next run, and forms that work
 * without JavaScript.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.ts";

let t: TestApp;
let alice: string;
let bob: string;
let sourceId: string;

const htmx = { "hx-request": "true", "hx-target": "sync-panel" };

function form(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return {
    body: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  };
}

beforeAll(async () => {
  t = await startTestApp();
  await t.user("alice@example.com", "alice-password");
  await t.user("bob@example.com", "bob-password-1");
  alice = await t.login("alice@example.com", "alice-password");
  bob = await t.login("bob@example.com", "bob-password-1");
  const created = await t.call("POST", "/api/data-sources", {
    cookie: alice,
    json: { name: "Shop", type: "CSV_FILE", configuration: { filePath: "shop.csv" } },
  });
  sourceId = created.body.id;
});
afterAll(() => t.close());

describe("sync panel", () => {
  it("has its place on the detail page, loaded by htmx, a link without JavaScript", async () => {
    const page = await t.call("GET", `/data-sources/${sourceId}`, { cookie: alice });
    expect(page.status).toBe(200);
    expect(page.text).toContain(`hx-get="/data-sources/${sourceId}/sync"`);
    expect(page.text).toContain(`href="/data-sources/${sourceId}/sync"`);
  });

  it("renders as a page of its own, and as a fragment for htmx", async () => {
    const page = await t.call("GET", `/data-sources/${sourceId}/sync`, { cookie: alice });
    expect(page.status).toBe(200);
    expect(page.text).toContain("<!DOCTYPE html>");
    expect(page.text).toContain("Sync now");
    expect(page.text).toContain("No sync yet.");
    expect(page.text).toContain("By hand only");
    const fragment = await t.call("GET", `/data-sources/${sourceId}/sync`, {
      cookie: alice,
      headers: htmx,
    });
    expect(fragment.text).not.toContain("<html");
    expect(fragment.text).toContain('id="sync-panel"');
    // Nothing runs: no polling.
    expect(fragment.text).not.toContain("every 2s");
  });

  it("starts a run and polls while it is queued, then stops polling once it is cancelled", async () => {
    const started = await t.call("POST", `/data-sources/${sourceId}/sync`, {
      cookie: alice,
      ...form({ mode: "full_refresh" }, htmx),
    });
    expect(started.status).toBe(200);
    expect(started.text).toContain('hx-trigger="every 2s"');
    expect(started.text).toContain("Queued");
    expect(started.text).toContain("Waiting for a worker");
    const [run] = (await t.call("GET", `/api/data-sources/${sourceId}/sync-logs`, {
      cookie: alice,
    })).body;
    expect(started.text).toContain(`/data-sources/${sourceId}/sync/${run.id}/cancel`);

    const again = await t.call("POST", `/data-sources/${sourceId}/sync`, {
      cookie: alice,
      ...form({}, htmx),
    });
    expect(again.text).toContain("already queued or running");

    const cancelled = await t.call("POST", `/data-sources/${sourceId}/sync/${run.id}/cancel`, {
      cookie: alice,
      ...form({}, htmx),
    });
    expect(cancelled.text).toContain("Cancelled");
    expect(cancelled.text).not.toContain("every 2s");
  });

  it("sends a browser without JavaScript back to the panel's page after a post", async () => {
    const reply = await t.call("POST", `/data-sources/${sourceId}/sync/schedule`, {
      cookie: alice,
      ...form({ schedule: "", timezone: "UTC", mode: "full_refresh" }),
    });
    expect(reply.status).toBe(303);
    expect(reply.headers.get("location")).toBe(`/data-sources/${sourceId}/sync`);
  });

  it("shows a schedule's next run, and what is wrong with a bad one", async () => {
    const bad = await t.call("POST", `/data-sources/${sourceId}/sync/schedule`, {
      cookie: alice,
      ...form({ schedule: "now and then", timezone: "UTC", mode: "full_refresh" }, htmx),
    });
    expect(bad.text).toContain("Not a cron expression");
    // What was typed stays in the form.
    expect(bad.text).toContain('value="now and then"');
    const good = await t.call("POST", `/data-sources/${sourceId}/sync/schedule`, {
      cookie: alice,
      ...form({ schedule: "15 4 * * *", timezone: "UTC", mode: "incremental" }, htmx),
    });
    expect(good.text).toContain("15 4 * * *");
    expect(good.text).toMatch(/next run\s*<time datetime="\d{4}-\d\d-\d\dT04:15:00\.000Z"/);
  });

  it("keeps other users out", async () => {
    const page = await t.call("GET", `/data-sources/${sourceId}/sync`, { cookie: bob });
    expect(page.status).toBe(403);
    const post = await t.call("POST", `/data-sources/${sourceId}/sync`, {
      cookie: bob,
      ...form({}),
    });
    expect(post.status).toBe(403);
  });
});
