/**
 * The bounds a run puts around a source's reads (sync/batches.ts): a stopped run stops
 * waiting at once, lets the read clean up, and leaves no failure without a handler behind
 * (one would reach the process's last handler as a bug).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { abandon, bounded, boundedBatches } from "../../sync/batches.ts";

let escaped: unknown[] = [];
const onRejection = (event: PromiseRejectionEvent) => {
  event.preventDefault();
  escaped.push(event.reason);
};
beforeEach(() => {
  escaped = [];
  globalThis.addEventListener("unhandledrejection", onRejection);
});
afterEach(() => globalThis.removeEventListener("unhandledrejection", onRejection));

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("bounded", () => {
  it("rejects at once on a signal already aborted, and the read's later failure has a handler", async () => {
    const controller = new AbortController();
    const reason = new Error("cancelled");
    controller.abort(reason);
    let fail: (error: unknown) => void = () => {};
    const read = new Promise((_resolve, reject) => (fail = reject));
    await expect(bounded(read, { signal: controller.signal, idleMs: 1_000 })).rejects.toBe(reason);
    fail(reason);
    await settle();
    expect(escaped).toEqual([]);
  });

  it("stops waiting when the signal aborts, and names an idle source", async () => {
    const controller = new AbortController();
    const never = new Promise<never>(() => {});
    const waiting = bounded(never, { signal: controller.signal, idleMs: 60_000 });
    controller.abort(new Error("shutdown"));
    await expect(waiting).rejects.toThrow("shutdown");
    await expect(bounded(never, { signal: new AbortController().signal, idleMs: 10 }))
      .rejects.toThrow(/sent nothing for 0 s/);
  });
});

describe("a read stopped midway", () => {
  it("runs the read's clean-up before the run goes on", async () => {
    const steps: string[] = [];
    async function* read() {
      try {
        yield { rows: [{ id: 1 }] };
        yield { rows: [{ id: 2 }] };
      } finally {
        await settle();
        steps.push("read cleaned up");
      }
    }
    const controller = new AbortController();
    const batches = boundedBatches(read(), { signal: controller.signal, idleMs: 1_000 });
    expect((await batches.next()).value).toEqual([{ id: 1 }]);
    await batches.return(undefined);
    steps.push("run went on");
    expect(steps).toEqual(["read cleaned up", "run went on"]);
  });

  it("waits only so long for a read that never settles", async () => {
    const stuck: AsyncIterator<unknown> = {
      next: () => new Promise(() => {}),
      return: () => new Promise(() => {}),
    };
    const started = Date.now();
    await abandon(stuck, { waitMs: 50 });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
