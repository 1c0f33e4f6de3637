import { randomToken } from "../vault/tokens.ts";

/** Row ids: 15 random bytes as 24 base32 characters, usable unquoted in SQL identifiers. */
export function newId(): string {
  return randomToken(15);
}

const ID_PATTERN = /^[a-z2-7]{24}$/;

/** True for strings shaped like our ids; anything else cannot name a row (and is a 404). */
export function isId(value: string): boolean {
  return ID_PATTERN.test(value);
}
