import type { IncomingMessage } from "node:http";
import { sign, unsign } from "cookie-signature";
import { LRUCache } from "lru-cache";
import type { Cookie } from "./cookie";
import type { CookieSettings } from "./cookie-settings";

/** The shape of the ids this package issues (UUID v4): anything else is never looked up. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** An id read from a request's cookie. */
export interface SignedId {
  readonly id: string;
  /** Signed with the first secret: the browser's cookie is the one `issue` would give. */
  readonly current: boolean;
}

/**
 * The cookie of a server-side store: it carries only the session id, signed with
 * `cookie-signature`, so a forged or guessed id never reaches the store.
 */
export class SignedIdCookie {
  /** Cookie values whose signature held: a browser sends the same one on every request (an HMAC each time otherwise). */
  private readonly verified = new LRUCache<string, SignedId>({ max: 10_000 });

  constructor(
    readonly settings: CookieSettings,
    private readonly secrets: readonly string[],
  ) {}

  /** The id the request's cookie carries, if its signature holds under one of the secrets. */
  read(cookies: Record<string, string>): SignedId | undefined {
    const value = cookies[this.settings.name];
    if (!value) return undefined;
    let signed = this.verified.get(value);
    if (signed === undefined) {
      signed = this.verify(value);
      if (signed !== undefined) this.verified.set(value, signed);
    }
    return signed;
  }

  private verify(value: string): SignedId | undefined {
    for (let i = 0; i < this.secrets.length; i++) {
      const id = unsign(value, this.secrets[i]);
      if (id === false) continue;
      return UUID.test(id) ? { id, current: i === 0 } : undefined;
    }
    return undefined;
  }

  /** The cookie for `id`, signed with the first secret; `maxAge` undefined: it ends with the browser. */
  issue(req: IncomingMessage, id: string, maxAge: number | undefined): Cookie {
    return this.settings.make(req, sign(id, this.secrets[0]), maxAge);
  }

  /** The cookie that deletes the session cookie in the browser. */
  expire(req: IncomingMessage): Cookie {
    return this.settings.expire(req);
  }
}
