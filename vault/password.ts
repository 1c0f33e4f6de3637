/** Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes). */
import { hash, verify } from "@node-rs/argon2";

const ARGON2ID = 2;
const argonOptions = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 };

export function hashPassword(password: string): Promise<string> {
  return hash(password, argonOptions);
}

export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;

/**
 * Spends the time of a real verification when the user does not exist, so a login for an
 * unknown email takes as long as one for a known email.
 */
export async function verifyAgainstNothing(password: string): Promise<false> {
  dummyHash ??= hashPassword("dafel-dummy-password");
  await verifyPassword(await dummyHash, password);
  return false;
}
