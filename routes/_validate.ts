/** zod validation for requests, answering the app's error shape instead of Hono's default. */
import { zValidator } from "@hono/zod-validator";
import type { ValidationTargets } from "hono";
import type { z } from "zod";
import { badRequest, issuesToDetails } from "./_errors.ts";

const targetNames: Partial<Record<keyof ValidationTargets, string>> = {
  json: "body",
  form: "form",
  query: "query string",
  param: "path",
};

/** `validate("json", schema)`: a 400 `VALIDATION_ERROR` naming each bad field. */
export function validate<T extends z.ZodType, Target extends keyof ValidationTargets>(
  target: Target,
  schema: T,
) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      const details = issuesToDetails(result.error.issues);
      const first = details[0];
      const where = targetNames[target] ?? target;
      throw badRequest(
        first?.path
          ? `Invalid ${where}: ${first.path}: ${first.message}`
          : `Invalid ${where}: ${first?.message ?? "bad input"}`,
        details,
      );
    }
  });
}
