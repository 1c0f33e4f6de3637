import { randomToken } from "../vault/tokens.ts";

/** Row ids: 15 random bytes as 24 base32 characters, usable unquoted in SQL identifiers. */
export function newId(): string {
  return randomToken(15);
}
