/**
 * One request's session, through the lifecycle of SPEC §3: loaded at most once, on first read
 * (or before the handlers for a store that loads with I/O); the response hooked on first read;
 * dumped before the headers unless it is new and empty; changes made later saved at the end
 * where the store can, and reported where it cannot.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import vary from "vary";
import { type Cookie, parseCookies } from "./cookie";
import { type SessionError, SessionUsageError } from "./errors";
import { type HeaderListener, hookResponse } from "./response-hook";
import { Session } from "./session";
import { isPromiseLike, type SessionContext, type SessionStore } from "./store";

/** What a request's session needs from the middleware that made it. */
export interface RequestSessionSettings {
  readonly store: SessionStore;
  /** The store loads with I/O: `load` runs before the handlers, or on `loadSession()`. */
  readonly loadsAsync: boolean;
  readonly onLostChange: (err: SessionError, req: IncomingMessage) => void;
  readonly onSaveError: (err: unknown, req: IncomingMessage, res: ServerResponse) => void;
}

export class RequestSession implements HeaderListener {
  private session: Session | undefined;
  private loading: Promise<Session> | undefined;
  private ctx: SessionContext | undefined;
  private hooked = false;
  /** JSON of the session when it was last saved; `undefined` until then. */
  private savedJson: string | undefined;
  /** Cookie values the browser keeps after the headers, by name (`undefined`: expired), for a late save to compare with. */
  private sent: Map<string, string | undefined> | undefined;

  constructor(
    private readonly settings: RequestSessionSettings,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
  ) {}

  /** `req.session`: loads the session (synchronous stores) and hooks the response, on first read. */
  read(): Session {
    let session = this.session;
    if (session === undefined) {
      if (this.settings.loadsAsync) {
        throw new SessionUsageError(
          "req.session was read before the session was loaded: this store loads asynchronously; with sessions(store, { preload: false }) call `await req.loadSession()` first (if preloading failed, its error went to next(err))",
        );
      }
      const loaded = this.settings.store.load(this.context());
      if (isPromiseLike(loaded)) {
        throw new SessionUsageError(
          "the store's load() returned a Promise but the store is not marked asynchronous: give the store `async = true` (or declare load as an `async function`) so sessions() loads it before the handlers",
        );
      }
      session = this.session = loaded;
    }
    if (!this.hooked) this.hook();
    return session;
  }

  /** `req.session = null` destroys the session (as in cookie-session); anything else is refused. */
  replace(value: unknown): void {
    if (value === null || value === undefined) {
      this.read().destroy();
      return;
    }
    throw new SessionUsageError("req.session cannot be replaced: change its keys, or call req.session.regenerate() / req.session.destroy()");
  }

  /** Loads the session before the handlers (stores that load with I/O); `next(err)` when that fails. */
  preload(next: (err?: unknown) => void): void {
    this.load().then(() => next(), next);
  }

  /** `await req.loadSession()`: loads once, then behaves as a read of `req.session`. */
  loadSession(): Promise<Session> {
    return this.load().then(() => this.read());
  }

  private load(): Promise<Session> {
    if (this.session !== undefined) return Promise.resolve(this.session);
    this.loading ??= Promise.resolve()
      .then(() => this.settings.store.load(this.context()))
      .then(
        (session) => (this.session = session),
        (err: unknown) => {
          this.loading = undefined; // a later call may try again
          throw err;
        },
      );
    return this.loading;
  }

  private context(): SessionContext {
    return (this.ctx ??= { req: this.req, res: this.res, cookies: parseCookies(this.req) });
  }

  private hook(): void {
    this.hooked = true;
    if (this.res.writableEnded) {
      // Read for the first time after the response ended: nothing can be saved any more.
      this.savedJson = JSON.stringify(this.session);
      this.res.once("finish", () => this.reportChangeAfterEnd());
      return;
    }
    if (this.res.headersSent) this.savedJson = JSON.stringify(this.session);
    hookResponse(this.res, this);
  }

  /**
   * Before the headers: dump unless the session is new and empty; the `Set-Cookie` values.
   * `Vary` is set here, not at the first read, so a handler's own `Vary` cannot replace it.
   */
  beforeHeaders(ending: boolean): string[] | Promise<string[]> {
    const session = this.session as Session;
    addVaryCookie(this.res);
    if (isNewAndEmpty(session)) return [];
    if (!ending) this.savedJson = JSON.stringify(session);
    const dumped = this.settings.store.dump(session, this.context());
    return isPromiseLike(dumped) ? Promise.resolve(dumped).then((c) => this.headerValues(c, ending)) : this.headerValues(dumped, ending);
  }

  /** Saving failed before the headers: the error response is the application's to write. */
  failed(err: unknown): void {
    this.settings.onSaveError(err, this.req, this.res);
  }

  /** The Set-Cookie values; unless `ending`, also what the browser will hold, for a late save to compare with. */
  private headerValues(dumped: Cookie | Cookie[], ending: boolean): string[] {
    const cookies = Array.isArray(dumped) ? dumped : [dumped];
    if (!ending) {
      this.sent = new Map();
      for (const cookie of cookies) this.sent.set(cookie.name, cookie.isExpired ? undefined : cookie.value);
    }
    return cookies.map((cookie) => cookie.serialize());
  }

  /**
   * At `end`, after the headers left: if the session changed since it was saved, dump it again.
   * A store that keeps data server-side saves it; a cookie that would have had to change is
   * reported through `onLostChange`, never dropped silently. Never throws.
   */
  beforeEnd(): void | Promise<void> {
    const session = this.session as Session;
    let dumped: Cookie | Cookie[] | Promise<Cookie | Cookie[]>;
    try {
      const json = JSON.stringify(session);
      // Nothing was saved before the headers (new and empty then): nothing to do if it still is.
      if (json === this.savedJson || (this.savedJson === undefined && isNewAndEmpty(session))) return;
      dumped = this.settings.store.dump(session, this.context());
    } catch (err) {
      this.reportLost(err);
      return;
    }
    if (!isPromiseLike(dumped)) return this.checkLateCookies(dumped);
    return Promise.resolve(dumped).then(
      (cookies) => this.checkLateCookies(cookies),
      (err: unknown) => this.reportLost(err),
    );
  }

  /** A late dump that returns a cookie the browser does not already hold: the change is lost. */
  private checkLateCookies(dumped: Cookie | Cookie[]): void {
    const ctx = this.context();
    for (const cookie of Array.isArray(dumped) ? dumped : [dumped]) {
      const sent = this.sent;
      const known = sent !== undefined && sent.has(cookie.name) ? sent.get(cookie.name) : ctx.cookies[cookie.name];
      if (cookie.isExpired ? known === undefined : known === cookie.value) continue;
      this.reportLost(undefined);
      return;
    }
  }

  /** After the response ended, a change can reach no store and no browser: report it. */
  private reportChangeAfterEnd(): void {
    if (JSON.stringify(this.session) !== this.savedJson) this.reportLost(undefined, "the response had already ended");
  }

  private reportLost(cause: unknown, why = "the store needs a new cookie, and the headers had already been sent"): void {
    const route = `${this.req.method} ${this.req.url}`;
    const reason = cause === undefined ? why : "saving it failed";
    const err = new SessionUsageError(
      `session change on ${route} was not saved: ${reason}. Change req.session before the response starts (before res.write/res.flushHeaders), or use a server-side store`,
    );
    if (cause !== undefined) (err as { cause?: unknown }).cause = cause;
    this.settings.onLostChange(err, this.req);
  }
}

/** `Vary: Cookie`, added to whatever `Vary` the handler set (the `vary` package merges). */
function addVaryCookie(res: ServerResponse): void {
  vary(res, "Cookie");
}

/** Created on this request and still holding nothing: never saved (SPEC §3.3). */
function isNewAndEmpty(session: Session): boolean {
  return Session.stateOf(session).loadedId === null && Session.isEmpty(session);
}
