/**
 * express-session's cookie: "s:" + the session id signed with `cookie-signature`, written
 * URI-encoded as express-session writes it ("s%3A..."), so an express-session app and
 * ExpressSessionStore each read the other's cookie. Secrets rotate as in express-session:
 * the first signs, every one verifies.
 */
import type { IncomingMessage } from "node:http";
import { sign, unsign } from "cookie-signature";
import { Cookie } from "./cookie";
import type { CookieSettings } from "./cookie-settings";
import type { SignedId } from "./signed-id";

export class ExpressSessionCookie {
  constructor(
    readonly settings: CookieSettings,
    private readonly secrets: readonly string[],
  ) {}

  /**
   * The id the request's cookie carries, if it is signed with one of the secrets. Any id shape
   * is taken (express-session's are 24 random bytes in base64url): the signature shows that an
   * app holding the secret issued it.
   */
  read(cookies: Record<string, string>): SignedId | undefined {
    const value = cookies[this.settings.name];
    if (value === undefined || !value.startsWith("s:")) return undefined;
    for (let i = 0; i < this.secrets.length; i++) {
      const id = unsign(value.slice(2), this.secrets[i]);
      if (id !== false) return id === "" ? undefined : { id, current: i === 0 };
    }
    return undefined;
  }

  /** The cookie for `id`, signed with the first secret; `maxAge` undefined: it ends with the browser. */
  issue(req: IncomingMessage, id: string, maxAge: number | undefined): Cookie {
    const made = this.settings.make(req, `s:${sign(id, this.secrets[0])}`, maxAge);
    return new UriEncodedCookie(made.name, made.value, made.attributes);
  }

  /** The cookie that deletes the session cookie in the browser. */
  expire(req: IncomingMessage): Cookie {
    return this.settings.expire(req);
  }
}

/**
 * A cookie whose value is always URI-encoded, as the `cookie` package that express-session
 * uses writes it: `Cookie` leaves ":", "+" and "/" as they are, which browsers keep just as
 * well, but then the two apps would send the same browser two spellings of one cookie.
 */
class UriEncodedCookie extends Cookie {
  protected override encoder(): (value: string) => string {
    return encodeURIComponent;
  }
}
