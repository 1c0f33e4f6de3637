/**
 * What a browser test needs: the real app (main.ts's start(), embedded database and demo
 * database, on a free loopback port) and Debian's Chromium driven by playwright-core, with
 * every console error and uncaught page error collected.
 */
import { type Browser, chromium, type Page } from "playwright-core";
import { parseConfig } from "../../config.ts";
import { type Running, start } from "../../main.ts";
import { configureLogging } from "../../telemetry.ts";
import {
  recordDatabase,
  recordOutput,
  recordSecrets,
  secretsInForm,
} from "../helpers/secret_scan.ts";

export const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** The flags known to work for headless Chromium on these machines (../shared/STACK.md). */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export type RunningApp = {
  running: Running;
  baseUrl: string;
  dataDir: string;
  stop(): Promise<void>;
};

/** Starts the whole app as `deno task start` does, in a fresh data directory. */
export async function startRealApp(env: Record<string, string> = {}): Promise<RunningApp> {
  const dataDir = await Deno.makeTempDir({ prefix: "dafel-browser-" });
  const config = parseConfig({
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    DEMO_DB_PORT: "0",
    JOBS: "false",
    LOG_LEVEL: "error",
    ...env,
  });
  // Every log line of the app goes to the whole-suite secret scan.
  await configureLogging({ level: "info", write: (line) => recordOutput("log", line) });
  const running = await start(config);
  const address = running.server.addr as Deno.NetAddr;
  return {
    running,
    baseUrl: `http://127.0.0.1:${address.port}`,
    dataDir,
    async stop() {
      await recordDatabase(running.deps.db);
      await running.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

export type Problems = { console: string[]; page: string[] };

/** Launches Chromium; every page opened through `newPage` reports its errors to `problems`. */
export async function launchBrowser(): Promise<
  {
    browser: Browser;
    newPage(baseUrl: string, options?: { javaScriptEnabled?: boolean }): Promise<Page>;
    problems: Problems;
  }
> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const problems: Problems = { console: [], page: [] };
  return {
    browser,
    problems,
    async newPage(baseUrl: string, options: { javaScriptEnabled?: boolean } = {}) {
      const context = await browser.newContext({
        baseURL: baseUrl,
        // Off: the pages as a browser without JavaScript (or before it loads) gets them.
        javaScriptEnabled: options.javaScriptEnabled ?? true,
        viewport: { width: 1280, height: 860 },
        deviceScaleFactor: 1,
        colorScheme: "light",
      });
      const page = await context.newPage();
      page.on("console", (message) => {
        if (message.type() === "error") {
          problems.console.push(`${page.url()}: ${message.text()}`);
        }
      });
      page.on("pageerror", (error) => problems.page.push(`${page.url()}: ${error.message}`));
      // Only loopback: anything else would be a bug of the page (an external asset).
      await context.route(/^(?!http:\/\/127\.0\.0\.1[:/]).*/, (route) => {
        problems.console.push(`request outside the app: ${route.request().url()}`);
        return route.abort();
      });
      page.on("dialog", (dialog) => dialog.accept());
      // The whole-suite secret scan: what was typed into secret fields, and what came back.
      page.on("request", (request) => {
        const body = request.postData();
        if (!body || !request.url().startsWith(baseUrl)) return;
        const type = request.headers()["content-type"] ?? "";
        if (type.includes("application/x-www-form-urlencoded")) {
          recordSecrets(secretsInForm(new URLSearchParams(body)));
        } else if (type.includes("multipart/form-data")) {
          const fields = [...body.matchAll(/name="([^"]+)"\r\n\r\n([^\r]*)\r\n/g)]
            .map((match) => [match[1], match[2]] as [string, string]);
          recordSecrets(secretsInForm(fields));
        }
      });
      page.on("response", async (response) => {
        const type = response.headers()["content-type"] ?? "";
        if (!response.url().startsWith(baseUrl) || !/html|json/.test(type)) return;
        const text = await response.text().catch(() => "");
        recordOutput(type.includes("html") ? "page" : "response", text);
      });
      return page;
    },
  };
}

/** Where screenshots go: SCREENSHOT_DIR, or a temporary folder. */
export async function screenshotDir(): Promise<string> {
  const dir = Deno.env.get("SCREENSHOT_DIR") ??
    await Deno.makeTempDir({ prefix: "dafel-screenshots-" });
  await Deno.mkdir(dir, { recursive: true });
  return dir;
}
