import type { IncomingMessage } from "node:http";
import { sign, unsign } from "cookie-signature";
import { type Cookie, type CookieOptions, CookieSettings } from "./cookie";

/** The shape of the ids this package issues (UUID v4): anything else is never looked up. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * The cookie of a server-side store: it carries only the session id, signed with
 * `cookie-signature`, so a forged or guessed id never reaches the store.
 */
export class SignedIdCookie {
  private readonly settings: CookieSettings;

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
    for (const secret of this.secrets) {
      const id = unsign(value, secret);
      if (id !== false) return UUID.test(id) ? id : undefined;
    }
    return undefined;
  }

  /** The cookie for `id`, signed with the first secret. */
  issue(req: IncomingMessage, id: string, maxAge: number): Cookie {
    return this.settings.make(req, sign(id, this.secrets[0]), maxAge);
  }

  /** The cookie that deletes the session cookie in the browser. */
  expire(req: IncomingMessage): Cookie {
    return this.settings.expire(req);
  }
}
