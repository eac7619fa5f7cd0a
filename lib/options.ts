import { SessionConfigError } from "./errors";

/** Shortest secret accepted: 32 characters, enough entropy for HMAC-SHA256 and key derivation. */
export const MIN_SECRET_LENGTH = 32;

const HOW_TO_MAKE_A_SECRET =
  "generate one with `node -e \"console.log(require('crypto').randomBytes(32).toString('base64url'))\"` and pass it from an environment variable";

/** Refuses options this store does not know (a typo in a config file fails at start-up). */
export function checkKeys(options: object, allowed: readonly string[], owner: string): void {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new SessionConfigError(`${owner}: unknown option "${key}"; the options are ${allowed.join(", ")}`);
    }
  }
}

/** `secret` as a non-empty list: the first signs/seals, all are tried on read (rotation). */
export function resolveSecrets(secret: unknown, owner: string): string[] {
  if (secret === undefined || secret === null || secret === "") {
    throw new SessionConfigError(`${owner} needs a secret: pass { secret: process.env.SESSION_SECRET } (at least ${MIN_SECRET_LENGTH} characters; ${HOW_TO_MAKE_A_SECRET})`);
  }
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) {
    throw new SessionConfigError(`${owner}: secret is an empty array; give at least one secret (the first signs, the others are still accepted on read)`);
  }
  secrets.forEach((value: unknown, i) => {
    if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH) {
      const which = Array.isArray(secret) ? `secret[${i}]` : "secret";
      throw new SessionConfigError(`${owner}: ${which} must be a string of at least ${MIN_SECRET_LENGTH} characters; ${HOW_TO_MAKE_A_SECRET}`);
    }
  });
  return secrets as string[];
}

/**
 * A duration option in milliseconds. Numeric strings are accepted so that values can come
 * straight from environment variables. `null` is returned only when `nullable` allows it.
 */
export function resolveDuration(value: unknown, fallback: number | null, name: string, owner: string, nullable = false): number | null {
  if (value === undefined) return fallback;
  if (value === null && nullable) return null;
  const ms = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
    const allowed = nullable ? " (or null to turn it off)" : "";
    throw new SessionConfigError(`${owner}: ${name} must be a positive number of milliseconds${allowed}, got ${JSON.stringify(value)}`);
  }
  return ms;
}
