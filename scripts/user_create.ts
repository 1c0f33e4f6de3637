/**
 * `deno task user:create --email a@b.c [--role ADMIN|USER]`: adds a user. The password is
 * read from DAFEL_USER_PASSWORD or asked for on the terminal (never a command-line argument,
 * which other users of the machine could see).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config.ts";
import { openDatabase } from "../db/mod.ts";
import { createUser, newUserSchema } from "../db/users.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { email: { type: "string" }, role: { type: "string", default: "USER" } },
});
const password = Deno.env.get("DAFEL_USER_PASSWORD") ?? prompt("Password (8+ characters):");
const parsed = newUserSchema.safeParse({ email: values.email, password, role: values.role });
if (!parsed.success) {
  for (const issue of parsed.error.issues) {
    console.error(`${issue.path.join(".")}: ${issue.message}`);
  }
  console.error("Usage: deno task user:create --email you@example.com [--role ADMIN|USER]");
  Deno.exit(2);
}
const config = loadConfig();
if (!config.databaseUrl) await Deno.mkdir(config.dataDir, { recursive: true });
const database = await openDatabase({
  url: config.databaseUrl,
  dataDir: config.pgliteDir,
});
try {
  const user = await createUser(database.db, parsed.data);
  if (!user) {
    console.error(`A user with the email ${parsed.data.email} already exists`);
    Deno.exitCode = 1;
  } else {
    console.log(`Created ${user.role} ${user.email} (${user.id})`);
  }
} finally {
  await database.close();
}
