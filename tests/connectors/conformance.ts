/**
 * The conformance suite: the same cases for every connector, run by each connector's test
 * file against its own real (or protocol-level stand-in) server. A connector that skips a
 * case says why.
 */
import { describe, expect, it } from "vitest";
import type {
  Connector,
  ConnectorContext,
  ErrorCode,
  SourceSettings,
} from "../../connectors/types.ts";
import { fingerprintOf } from "../../connectors/operations.ts";

type Settings = { config: Record<string, unknown>; secrets: Record<string, unknown> };

export type ConformanceCase =
  | "settings"
  | "test"
  | "failures"
  | "discover"
  | "preview"
  | "read"
  | "incremental"
  | "secrets";

export type ConformanceTarget = {
  /** Shown in test names. */
  name: string;
  connector: Connector;
  ctx: ConnectorContext;
  /** Settings of a reachable source that holds the fixture stream. */
  settings: () => Settings | Promise<Settings>;
  /** A stream the fixture created, its columns, and its exact row count. */
  stream: { name: string; schema?: string; columns: string[]; rows: number };
  /** A column that increases with each row (for incremental reads). */
  cursorColumn?: string;
  /** Settings that must fail, each with the code it must produce. */
  failures: { name: string; settings: () => Settings | Promise<Settings>; code: ErrorCode }[];
  /** Cases this connector cannot run, each with the reason. */
  skip?: Partial<Record<ConformanceCase, string>>;
};

let counter = 0;
function sourceSettings(
  settings: Settings,
): SourceSettings<Record<string, unknown>, Record<string, unknown>> {
  counter++;
  return { id: `conformance-${counter}`, fingerprint: fingerprintOf(settings), ...settings };
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

export function runConformance(target: ConformanceTarget): void {
  const skip = target.skip ?? {};
  const run = (name: ConformanceCase, title: string, fn: () => Promise<void>) => {
    const reason = skip[name];
    if (reason) it.skip(`${title} (skipped: ${reason})`, fn);
    else it(title, fn);
  };

  describe(`${target.name} conformance`, () => {
    run("settings", "its example settings pass its own schemas", async () => {
      const settings = await target.settings();
      expect(target.connector.configSchema.safeParse(settings.config).success).toBe(true);
      expect(target.connector.secretsSchema.safeParse(settings.secrets).success).toBe(true);
    });

    run("test", "a test succeeds with timed stages and server info", async () => {
      const settings = sourceSettings(await target.settings());
      try {
        const result = await target.connector.test(settings, target.ctx);
        expect(result.success, JSON.stringify(result.error)).toBe(true);
        expect(result.error).toBeUndefined();
        expect(result.stages.length).toBeGreaterThan(0);
        for (const stage of result.stages) {
          expect(stage.ok).toBe(true);
          expect(stage.ms).toBeGreaterThanOrEqual(0);
        }
        expect(result.responseTime).toBeGreaterThanOrEqual(0);
        expect(Object.keys(result.serverInfo ?? {}).length).toBeGreaterThan(0);
      } finally {
        await target.connector.close?.(settings.id);
      }
    });

    run("failures", "each failure is a value with its code, a message and a hint", async () => {
      expect(target.failures.length).toBeGreaterThan(0);
      for (const failure of target.failures) {
        const settings = sourceSettings(await failure.settings());
        try {
          const result = await target.connector.test(settings, target.ctx);
          expect(result.success, failure.name).toBe(false);
          expect(result.error?.code, `${failure.name}: ${JSON.stringify(result.error)}`).toBe(
            failure.code,
          );
          expect(result.error?.message.length, failure.name).toBeGreaterThan(0);
          expect(result.error?.hint.length, failure.name).toBeGreaterThan(0);
          expect(result.stages.some((stage) => !stage.ok), failure.name).toBe(true);
        } finally {
          await target.connector.close?.(settings.id);
        }
      }
    });

    run("discover", "discovery lists the fixture stream with its columns and rows", async () => {
      const settings = sourceSettings(await target.settings());
      try {
        const result = await target.connector.discover(settings, target.ctx);
        expect(result.ok, JSON.stringify(!result.ok && result.error)).toBe(true);
        if (!result.ok) return;
        const stream = result.value.streams.find((s) =>
          s.name === target.stream.name &&
          (target.stream.schema === undefined || s.schema === target.stream.schema)
        );
        expect(stream, `stream ${target.stream.name}`).toBeDefined();
        expect(stream!.columns.map((c) => c.name)).toEqual(
          expect.arrayContaining(target.stream.columns),
        );
        for (const column of stream!.columns) expect(typeof column.type).toBe("string");
        if (stream!.rowCountExact) expect(stream!.rowCount).toBe(target.stream.rows);
      } finally {
        await target.connector.close?.(settings.id);
      }
    });

    run("preview", "preview returns at most `limit` rows with the stream's columns", async () => {
      const settings = sourceSettings(await target.settings());
      try {
        const result = await target.connector.preview(
          settings,
          { stream: target.stream, limit: 3 },
          target.ctx,
        );
        expect(result.ok, JSON.stringify(!result.ok && result.error)).toBe(true);
        if (!result.ok) return;
        expect(result.value.rows.length).toBe(Math.min(3, target.stream.rows));
        expect(result.value.columns.map((c) => c.name)).toEqual(
          expect.arrayContaining(target.stream.columns),
        );
        // Rows are plain JSON: what the API will send.
        expect(JSON.parse(JSON.stringify(result.value.rows))).toEqual(result.value.rows);
      } finally {
        await target.connector.close?.(settings.id);
      }
    });

    run("read", "read yields batches of at most batchSize that add up to every row", async () => {
      const settings = sourceSettings(await target.settings());
      try {
        const batchSize = Math.max(1, Math.ceil(target.stream.rows / 4));
        const batches = await collect(
          target.connector.read(settings, { stream: target.stream, batchSize }, target.ctx),
        );
        for (const batch of batches) expect(batch.rows.length).toBeLessThanOrEqual(batchSize);
        expect(batches.reduce((sum, batch) => sum + batch.rows.length, 0)).toBe(target.stream.rows);
      } finally {
        await target.connector.close?.(settings.id);
      }
    });

    run("incremental", "read past a cursor returns only the later rows", async () => {
      expect(target.connector.capabilities.incremental).toBe(true);
      const column = target.cursorColumn!;
      const settings = sourceSettings(await target.settings());
      try {
        const all = (await collect(
          target.connector.read(settings, { stream: target.stream, batchSize: 1000 }, target.ctx),
        ))
          .flatMap((batch) => batch.rows);
        const values = all.map((row) => row[column]).sort((
          a,
          b,
        ) => (String(a) < String(b) ? -1 : 1));
        const middle = values[Math.floor(values.length / 2)];
        const later = (await collect(
          target.connector.read(settings, {
            stream: target.stream,
            batchSize: 1000,
            cursor: { column, after: middle },
          }, target.ctx),
        )).flatMap((batch) => batch.rows);
        expect(later.length).toBeGreaterThan(0);
        expect(later.length).toBeLessThan(all.length);
        for (const row of later) expect(row[column] !== middle).toBe(true);
      } finally {
        await target.connector.close?.(settings.id);
      }
    });

    run("secrets", "no failure message or hint repeats a secret", async () => {
      for (const failure of target.failures) {
        const raw = await failure.settings();
        const settings = sourceSettings(raw);
        try {
          const result = await target.connector.test(settings, target.ctx);
          const text = JSON.stringify(result);
          for (const value of Object.values(raw.secrets)) {
            if (typeof value === "string" && value.length >= 4) {
              expect(text.includes(value), failure.name).toBe(false);
            }
          }
        } finally {
          await target.connector.close?.(settings.id);
        }
      }
    });
  });
}
