/** CSV files under FILES_DIR, through csv-parse. */
import { z } from "zod";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  filePath: z
    .string()
    .trim()
    .min(1, "File path is required")
    .max(1024)
    .refine((path) => !path.startsWith("/") && !/^[A-Za-z]:/.test(path), {
      message: "Must be relative to the files directory",
    })
    .refine((path) => !path.split(/[\\/]/).includes(".."), {
      message: "Must not contain ..",
    })
    .meta({
      title: "File",
      description: "Path relative to the files directory, or upload a file",
      placeholder: "exports/customers.csv",
    }),
  delimiter: z.string().min(1).max(4).default(",").meta({ title: "Delimiter" }),
  quote: z.string().length(1).default('"').meta({ title: "Quote character" }),
  encoding: z.enum(["utf8", "latin1"]).default("utf8").meta({ title: "Encoding" }),
  headers: z.coerce.boolean().default(true).meta({
    title: "First row is a header",
  }),
});

const secretsSchema = z.strictObject({});

export const csvFile = {
  type: "CSV_FILE",
  label: "CSV file",
  description: "Uploaded or placed in the files directory",
  configSchema,
  secretsSchema,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
