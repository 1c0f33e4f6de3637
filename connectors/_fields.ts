/** Field builders shared by the connectors' config schemas, so every form reads the same. */
import { z } from "zod";

export function hostField() {
  return z.string().trim().min(1, "Host is required").max(255).meta({
    title: "Host",
    description: "Server name or IP address",
    placeholder: "db.example.com",
  });
}

export function portField(defaultPort: number) {
  return z.coerce.number().int().min(1).max(65535).default(defaultPort).meta({
    title: "Port",
  });
}

export function databaseField() {
  return z.string().trim().min(1, "Database is required").max(255).meta({ title: "Database" });
}

export function usernameField() {
  return z.string().trim().min(1, "Username is required").max(255).meta({ title: "Username" });
}

export function passwordField() {
  return z.string().min(1, "Password is required").max(1024).meta({ title: "Password" });
}

export function sslField() {
  return z.coerce.boolean().default(false).meta({
    title: "Use TLS (SSL)",
    description: "Encrypt the connection; required by most hosted databases",
  });
}

export function httpUrlField(title: string, placeholder: string) {
  return z.url({ protocol: /^https?$/, error: "Must be an http:// or https:// URL" }).max(2048)
    .meta({ title, placeholder });
}

/** Extra HTTP headers; a header marked secret keeps its value in the vault. */
export function headersField() {
  return z
    .array(z.strictObject({
      name: z.string().trim().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "Not a valid header name"),
      value: z.string().max(8192).optional(),
      secret: z.boolean().default(false),
    }))
    .max(50)
    .default([])
    .meta({
      title: "Headers",
      description: "Extra request headers; values marked secret are stored encrypted",
    });
}

/** Secret header values, by header name (filled from headers marked secret). */
export function secretHeadersField() {
  return z.record(z.string(), z.string().max(8192)).optional().meta({ title: "Secret headers" });
}

export function timeoutField(title: string) {
  return z.coerce.number().int().min(100).max(600_000).optional().meta({
    title,
    description: "Milliseconds; defaults to CONNECTION_TIMEOUT_MS",
  });
}
