/**
 * The process's last line of defence (telemetry.ts, installed by main.ts): an error that no
 * code handled is logged once with its stack and what it belonged to, and the process goes
 * on serving; only an error that leaves the process unusable ends it. Run in a child Deno
 * process, as main.ts runs, since the test runner has handlers of its own for such errors.
 */
import { describe, expect, it } from "vitest";

const TELEMETRY = new URL("../telemetry.ts", import.meta.url).href;

async function runScript(body: string) {
  const script = `
import { EventEmitter } from "node:events";
import { configureLogging, installProcessGuards, withLogContext } from "${TELEMETRY}";
await configureLogging({ level: "info" });
installProcessGuards();
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
${body}
`;
  const output = await new Deno.Command("deno", {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const lines = decoder.decode(output.stdout).split("\n").filter(Boolean);
  const records = lines.flatMap((line) => {
    try {
      return [JSON.parse(line)];
    } catch {
      return [];
    }
  });
  return { code: output.code, lines, records, stderr: decoder.decode(output.stderr) };
}

describe("an error that escapes every handler", () => {
  it("is logged once with its stack and its run, and the process goes on", async () => {
    const result = await runScript(`
withLogContext({ syncLogId: "run-1" }, () => {
  const error = new Error("nobody awaited this");
  Promise.reject(error);
  Promise.reject(error);
});
await pause(50);
setTimeout(() => { throw new Error("thrown from a timer"); }, 0);
await pause(50);
setTimeout(() => new EventEmitter().emit("error", new Error("an event without a listener")), 0);
await pause(50);
console.log("still serving");
`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.lines.at(-1)).toBe("still serving");
    const escaped = result.records.filter((record) =>
      record.message === "An error escaped every handler; the process goes on"
    );
    expect(escaped.map((record) => [record.kind, record.error])).toEqual([
      ["unhandled rejection", "Error: nobody awaited this"],
      ["uncaught exception", "Error: thrown from a timer"],
      ["uncaught exception", "Error: an event without a listener"],
    ]);
    expect(escaped[0].syncLogId).toBe("run-1");
    expect(escaped[0].stack).toMatch(/nobody awaited this\n\s+at /);
    expect(escaped[0].level).toBe("ERROR");
  });

  it("ends the process with exit code 1 when the embedded database's engine aborted", async () => {
    const result = await runScript(`
Promise.reject(new WebAssembly.RuntimeError("Aborted(). Build with -sASSERTIONS for more info."));
await pause(100);
console.log("still serving");
`);
    expect(result.code).toBe(1);
    expect(result.lines).not.toContain("still serving");
    const fatal = result.records.find((record) => record.level === "FATAL");
    expect(fatal?.message).toBe("An unhandled error left the process unusable; exiting");
    expect(fatal?.error).toMatch(/^RuntimeError: Aborted/);
  });
});
