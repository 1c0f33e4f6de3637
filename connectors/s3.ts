/** Amazon S3 and S3-compatible object stores. */
import { z } from "zod";
import { httpUrlField } from "./_fields.ts";
import type { ConnectorSpec } from "./types.ts";

const configSchema = z.strictObject({
  bucketName: z
    .string()
    .trim()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "Not a valid bucket name")
    .meta({ title: "Bucket", placeholder: "my-data-bucket" }),
  region: z.string().trim().regex(/^[a-z0-9-]{2,40}$/, "Not a valid region").meta({
    title: "Region",
    placeholder: "us-east-1",
  }),
  accessKey: z.string().trim().min(1, "Access key is required").max(256).meta({
    title: "Access key ID",
  }),
  prefix: z.string().max(1024).optional().meta({
    title: "Prefix",
    description: "Only objects under this key prefix, such as exports/2026/",
  }),
  endpoint: httpUrlField("Endpoint", "https://s3.example.com").optional().meta({
    title: "Endpoint",
    description: "For S3-compatible stores; empty for AWS",
  }),
  forcePathStyle: z.coerce.boolean().default(false).meta({
    title: "Path-style URLs",
    description: "Needed by most S3-compatible stores",
  }),
});

const secretsSchema = z.strictObject({
  secretKey: z.string().min(1, "Secret key is required").max(1024).meta({
    title: "Secret access key",
  }),
});

export const s3 = {
  type: "S3",
  label: "Amazon S3",
  description: "CSV, JSON Lines and JSON files in a bucket",
  configSchema,
  secretsSchema,
} satisfies ConnectorSpec<typeof configSchema, typeof secretsSchema>;
