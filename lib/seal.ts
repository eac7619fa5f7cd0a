/**
 * How CookieStore protects the session it puts in the cookie: sealed with AES-256-GCM (the
 * client can neither read nor change it) or, with `encrypt: false`, signed with an HMAC by
 * cookie-signature (readable base64url JSON, not changeable). Both are bound to the cookie name.
 * The result uses only characters a cookie value may hold unescaped: base64url, "." and base64.
 * A seal opens only as it was written: the HMAC covers the exact text, and `decrypt` refuses
 * other spellings of the same bytes.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { sign, unsign } from "cookie-signature";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export class Seal {
  /** AES keys derived from the secrets (HKDF), first one seals. */
  private readonly keys: Buffer[];
  private readonly aad: Buffer;

  constructor(
    private readonly secrets: readonly string[],
    private readonly name: string,
    readonly encrypt: boolean,
  ) {
    this.keys = secrets.map((secret) => Buffer.from(hkdfSync("sha256", secret, "", "sessionbox CookieStore AES-256-GCM", 32)));
    this.aad = Buffer.from(name);
  }

  /** Seals `plaintext` with the first secret. */
  seal(plaintext: string): string {
    if (!this.encrypt) return sign(`${this.name}=${Buffer.from(plaintext).toString("base64url")}`, this.secrets[0]).slice(this.name.length + 1);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keys[0], iv);
    cipher.setAAD(this.aad);
    const body = cipher.update(plaintext, "utf8");
    cipher.final(); // GCM adds no bytes here: it computes the tag
    return Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** Opens a seal with each secret in turn (`rotated`: not the first); `undefined` when none fits. */
  open(value: string): { plaintext: string; rotated: boolean } | undefined {
    return this.encrypt ? this.decrypt(value) : this.verify(value);
  }

  private verify(value: string): { plaintext: string; rotated: boolean } | undefined {
    for (let i = 0; i < this.secrets.length; i++) {
      const signed = unsign(`${this.name}=${value}`, this.secrets[i]);
      if (signed !== false) return { plaintext: Buffer.from(signed.slice(this.name.length + 1), "base64url").toString("utf8"), rotated: i > 0 };
    }
    return undefined;
  }

  private decrypt(value: string): { plaintext: string; rotated: boolean } | undefined {
    if (!BASE64URL.test(value)) return undefined;
    const sealed = Buffer.from(value, "base64url");
    if (sealed.length <= 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) return undefined;
    // The decoder ignores a dangling character and the unused bits of the last one: other
    // spellings of these bytes, which were never written, are altered cookies.
    if (sealed.toString("base64url") !== value) return undefined;
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const body = sealed.subarray(1 + IV_BYTES, sealed.length - TAG_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    for (let i = 0; i < this.keys.length; i++) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", this.keys[i], iv);
        decipher.setAAD(this.aad);
        decipher.setAuthTag(tag);
        return { plaintext: decipher.update(body, undefined, "utf8") + decipher.final("utf8"), rotated: i > 0 };
      } catch {
        // wrong key, or tampered: try the next secret
      }
    }
    return undefined;
  }
}
