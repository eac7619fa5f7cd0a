import type { IncomingMessage } from "node:http";
import { sign, unsign } from "cookie-signature";
import { LRUCache } from "lru-cache";
import { type Cookie, type CookieOptions, CookieSettings } from "./cookie";

/** The shape of the ids this package issues (UUID v4): anything else is never looked up. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The cookie of a server-side store: it carries only the session id, signed with
 * `cookie-signature`, so a forged or guessed id never reaches the store.
 */
export class SignedIdCookie {
  private readonly settings: CookieSettings;
  /**
   * Cookie values this process signed or verified under the first secret, with their id: a
   * returning browser's cookie is then checked by a lookup of its exact value instead of an
   * HMAC, and re-issued as it is. Only authentic values get in; bounded like the stores.
   */
  private readonly verified = new LRUCache<string, string>({ max: 10_000 });

  constructor(
    name: string,
    cookie: CookieOptions | undefined,
    private readonly secrets: readonly string[],
    owner: string,
  ) {
    this.settings = new CookieSettings(name, cookie, owner);
  }

  /** The id the request's cookie carries, if its signature holds under one of the secrets. */
  read(cookies: Record<string, string>): string | undefined {
    const value = cookies[this.settings.name];
    if (!value) return undefined;
    const known = this.verified.get(value);
    if (known !== undefined) return known;
    for (let i = 0; i < this.secrets.length; i++) {
      const id = unsign(value, this.secrets[i]);
      if (id === false) continue;
      if (!UUID.test(id)) return undefined;
      if (i === 0) this.verified.set(value, id);
      return id;
    }
    return undefined;
  }

  /**
   * `true` when the request's cookie already is the one `issue` would give for `id`: signed with
   * the first secret. A store re-issues a cookie signed with an older secret (rotation) even when
   * it would not re-issue it yet otherwise. (A value pushed out of the cache of verified values
   * just counts as not current: it is re-issued, which costs a Set-Cookie and nothing else.)
   */
  isCurrent(cookies: Record<string, string>, id: string): boolean {
    const value = cookies[this.settings.name];
    return value !== undefined && this.verified.get(value) === id;
  }

  /** The cookie for `id`, signed with the first secret (the browser's own value when it already is). */
  issue(req: IncomingMessage, id: string, maxAge: number, cookies: Record<string, string>): Cookie {
    let value = cookies[this.settings.name];
    if (!this.isCurrent(cookies, id)) {
      value = sign(id, this.secrets[0]);
      this.verified.set(value, id);
    }
    return this.settings.make(req, value, maxAge);
  }

  /** The cookie that deletes the session cookie in the browser. */
  expire(req: IncomingMessage): Cookie {
    return this.settings.expire(req);
  }
}
