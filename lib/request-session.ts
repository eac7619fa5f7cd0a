/**
 * One request's session, through the lifecycle of SPEC §3: loaded at most once, on first read
 * (or before the handlers for a store that loads with I/O); the response hooked on first read;
 * dumped before the headers unless it is new and empty; changes made later saved at the end
 * where the store can, and reported where they cannot reach the store or the browser.
 * It also serves the session's methods that need the store (save, reload, regenerate).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import vary from "vary";
import { type Cookie, parseCookies } from "./cookie";
import { SessionError, SessionUsageError } from "./errors";
import { type HeaderListener, hookResponse } from "./response-hook";
import { Session, type SessionOwner } from "./session";
import { sessionJson } from "./session-json";
import { isPromiseLike, type SessionContext, type SessionStore } from "./store";

/** What a request's session needs from the middleware that made it. */
export interface RequestSessionSettings {
  readonly store: SessionStore;
  /** The store loads with I/O: `load` runs before the handlers, or on `loadSession()`. */
  readonly loadsAsync: boolean;
  readonly onLostChange: (err: SessionError, req: IncomingMessage) => void;
  readonly onSaveError: (err: unknown, req: IncomingMessage, res: ServerResponse) => void;
}

export class RequestSession implements HeaderListener, SessionOwner {
  private session: Session | undefined;
  private loading: Promise<Session> | undefined;
  private ctx: SessionContext | undefined;
  private hooked = false;
  /** The dump in progress (save(), or before the headers): the next one waits for it. */
  private saving: Promise<void> | undefined;
  /** JSON of the session when it was last saved; `undefined` until then. */
  private savedJson: string | undefined;
  /** Cookies dumped before the headers (by save()), by name: they go out with the headers. */
  private pending = new Map<string, Cookie>();
  /** Cookie values the browser holds after the headers, by name (`undefined`: expired). */
  private sent = new Map<string, string | undefined>();

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
      session = this.serve(loaded);
    }
    if (!this.hooked) this.hook();
    return session;
  }

  /** `req.session = null` destroys the session (as in cookie-session); anything else is refused. */
  assign(value: unknown): void {
    if (value === null || value === undefined) {
      void this.read().destroy();
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
        (session) => this.serve(session),
        (err: unknown) => {
          this.loading = undefined; // a later call may try again
          throw err;
        },
      );
    return this.loading;
  }

  private serve(session: Session): Session {
    Session.serve(session, this);
    return (this.session = session);
  }

  private context(): SessionContext {
    return (this.ctx ??= { req: this.req, res: this.res, cookies: parseCookies(this.req) });
  }

  private hook(): void {
    this.hooked = true;
    if (this.res.headersSent) this.savedJson = JSON.stringify(this.session);
    if (!this.res.writableEnded) hookResponse(this.res, this);
    // A change after the response ended can reach no store and no browser: report it.
    this.res.once("finish", () => this.checkAfterEnd());
  }

  /** SessionOwner: `regenerate()` makes `replacement` the request's session. */
  replace(session: Session, replacement: Session): void {
    this.current(session, "regenerate");
    this.serve(replacement);
  }

  /** SessionOwner: `save()` dumps now, after any dump in progress. */
  save(session: Session): Promise<void> {
    this.current(session, "save");
    const saving = (this.saving ?? Promise.resolve()).then(() => this.dumpNow());
    this.track(saving);
    return saving;
  }

  /** Makes the next dump wait for `dump`. */
  private track(dump: Promise<unknown>): void {
    const settled: Promise<void> = dump.then(ignore, ignore).then(() => {
      if (this.saving === settled) this.saving = undefined;
    });
    this.saving = settled;
  }

  /** SessionOwner: `reload()` loads the session again, as the browser would send its cookies now. */
  async reload(session: Session): Promise<void> {
    this.current(session, "reload");
    const cookies = { ...this.context().cookies };
    for (const [name, value] of [...this.pending].map(([n, c]) => [n, c.isExpired ? undefined : c.value] as const).concat([...this.sent])) {
      if (value === undefined) delete cookies[name];
      else cookies[name] = value;
    }
    const reloaded = await this.settings.store.load({ ...this.context(), cookies });
    if (Session.stateOf(reloaded).loadedId === null && !isNewAndEmpty(session)) {
      throw new SessionError("req.session.reload() found no session in the store: it was destroyed or has expired", 500, "SESSION_NOT_FOUND");
    }
    this.serve(reloaded);
    this.savedJson = JSON.stringify(reloaded);
  }

  private current(session: Session, method: string): void {
    if (session !== this.session) {
      throw new SessionUsageError(`session.${method}() was called on a session object that regenerate() or reload() has replaced: use req.session`);
    }
  }

  /** A dump outside the headers: its cookies go out with the headers if they have not left, else must already be in the browser. */
  private dumpNow(): Promise<void> {
    const session = this.session as Session;
    if (isNewAndEmpty(session)) return Promise.resolve();
    const json = sessionJson(session, 0);
    return Promise.resolve(this.settings.store.dump(session, this.context())).then((dumped) => {
      Session.saved(session);
      if (this.session === session) this.savedJson = json;
      const cookies = Array.isArray(dumped) ? dumped : [dumped];
      if (!this.res.headersSent) {
        for (const cookie of cookies) this.pending.set(cookie.name, cookie);
      } else if (this.lostCookie(cookies)) {
        throw this.lostError("the store needs a new cookie, and the headers had already been sent");
      }
    });
  }

  /**
   * HeaderListener, before the headers: dump unless the session is new and empty; the
   * `Set-Cookie` values. `Vary` is set here, not at the first read, so a handler's own `Vary`
   * cannot replace it.
   */
  beforeHeaders(): string[] | Promise<string[]> {
    addVaryCookie(this.res);
    if (this.saving !== undefined) return this.saving.then(() => this.headerCookies());
    return this.headerCookies();
  }

  private headerCookies(): string[] | Promise<string[]> {
    const session = this.session as Session;
    if (isNewAndEmpty(session)) return this.sendCookies([]);
    this.savedJson = sessionJson(session, 0);
    const dumped = this.settings.store.dump(session, this.context());
    const done = (cookies: Cookie | Cookie[]) => {
      Session.saved(session);
      return this.sendCookies(Array.isArray(cookies) ? cookies : [cookies]);
    };
    if (!isPromiseLike(dumped)) return done(dumped);
    const cookies = Promise.resolve(dumped).then(done);
    this.track(cookies);
    return cookies;
  }

  /** The Set-Cookie values: what save() dumped, overridden by the last dump; remembered for late saves. */
  private sendCookies(cookies: Cookie[]): string[] {
    for (const cookie of cookies) this.pending.set(cookie.name, cookie);
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const cookie of all) this.sent.set(cookie.name, cookie.isExpired ? undefined : cookie.value);
    return all.map((cookie) => cookie.serialize());
  }

  /** HeaderListener: saving failed before the headers; the error response is the application's to write. */
  failed(err: unknown): void {
    this.settings.onSaveError(err, this.req, this.res);
  }

  /**
   * HeaderListener, at `end` after the headers left: if the session changed since it was saved,
   * dump it again. A store that keeps data server-side saves it; a cookie that would have had to
   * change is reported through `onLostChange`, never dropped silently. Never throws.
   */
  beforeEnd(): void | Promise<void> {
    const session = this.session as Session;
    let dumped: Cookie | Cookie[] | Promise<Cookie | Cookie[]>;
    try {
      const json = sessionJson(session, 0);
      // Nothing saved before the headers (new and empty then): nothing to do if it still is.
      if (json === this.savedJson || (this.savedJson === undefined && isNewAndEmpty(session))) return;
      this.savedJson = json;
      dumped = this.settings.store.dump(session, this.context());
    } catch (err) {
      this.reportLost(err);
      return;
    }
    const check = (cookies: Cookie | Cookie[]) => {
      Session.saved(session);
      if (this.lostCookie(Array.isArray(cookies) ? cookies : [cookies])) this.reportLost(undefined);
    };
    if (!isPromiseLike(dumped)) return check(dumped);
    return Promise.resolve(dumped).then(check, (err: unknown) => this.reportLost(err));
  }

  /** `true` when a cookie dumped after the headers is not one the browser already holds. */
  private lostCookie(cookies: Cookie[]): boolean {
    const ctx = this.context();
    return cookies.some((cookie) => {
      const known = this.sent.has(cookie.name) ? this.sent.get(cookie.name) : ctx.cookies[cookie.name];
      return cookie.isExpired ? known !== undefined : known !== cookie.value;
    });
  }

  /** When the response has finished: a change since the last save reached neither the store nor the browser. */
  private checkAfterEnd(): void {
    const session = this.session as Session;
    let changed: boolean;
    try {
      changed = this.savedJson === undefined ? !isNewAndEmpty(session) : sessionJson(session, 0) !== this.savedJson;
    } catch {
      changed = true; // data JSON cannot hold (too deep, a BigInt, a cycle): in a 'finish' listener, a throw would end the process
    }
    if (changed) this.reportLost(undefined, "the response had already ended");
  }

  private reportLost(cause: unknown, why = "the store needs a new cookie, and the headers had already been sent"): void {
    const err = this.lostError(cause === undefined ? why : "saving it failed");
    if (cause !== undefined) (err as { cause?: unknown }).cause = cause;
    this.settings.onLostChange(err, this.req);
  }

  private lostError(reason: string): SessionUsageError {
    return new SessionUsageError(
      `session change on ${this.req.method} ${this.req.url} was not saved: ${reason}. Change req.session before the response starts (before res.write/res.flushHeaders), or use a server-side store`,
    );
  }
}

function ignore(): void {}

/** `Vary: Cookie`, added to whatever `Vary` the handler set (the `vary` package merges). */
function addVaryCookie(res: ServerResponse): void {
  vary(res, "Cookie");
}

/** Created on this request and still holding nothing: never saved (SPEC §3.3). */
function isNewAndEmpty(session: Session): boolean {
  return Session.stateOf(session).loadedId === null && Session.isEmpty(session);
}
