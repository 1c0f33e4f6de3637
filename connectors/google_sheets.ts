/** Google Sheets, through @googleapis/sheets with a service account. */
import { z } from "zod";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  spreadsheetId: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9_-]{10,200}$/, "Not a spreadsheet id (the part of the URL after /d/)")
    .meta({ title: "Spreadsheet ID", placeholder: "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms" }),
  sheetName: z.string().trim().max(200).optional().meta({
    title: "Sheet",
    description: "Only this sheet; all sheets when empty",
  }),
  range: z.string().trim().max(200).optional().meta({
    title: "Range",
    description: "A1 notation such as A1:F500; the whole sheet when empty",
  }),
});

const serviceAccountKeys = ["client_email", "private_key"] as const;

/** The service-account JSON as downloaded from the cloud console. */
const credentialsField = z
  .string()
  .min(2, "Credentials are required")
  .max(64 * 1024)
  .superRefine((text, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: "custom", message: "Credentials must be the service-account JSON" });
      return;
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      ctx.addIssue({ code: "custom", message: "Credentials must be a JSON object" });
      return;
    }
    for (const key of serviceAccountKeys) {
      if (typeof (parsed as Record<string, unknown>)[key] !== "string") {
        ctx.addIssue({ code: "custom", message: `Credentials JSON is missing "${key}"` });
      }
    }
  })
  .meta({
    title: "Service account JSON",
    description: "Share the spreadsheet with the service account's client_email",
  });

const secretsSchema = z.strictObject({ credentials: credentialsField });

export const googleSheets = {
  type: "GOOGLE_SHEETS",
  label: "Google Sheets",
  description: "Spreadsheets shared with a service account",
  configSchema,
  secretsSchema,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
