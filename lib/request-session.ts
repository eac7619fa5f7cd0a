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

/** What a request's session needs from the middleware that made it (one object per middleware). */
export interface RequestSessionSettings {
  readonly store: SessionStore;
  /** The store loads with I/O: `load` runs before the handlers, or on `loadSession()`. */
  readonly loadsAsync: boolean;
  readonly onLostChange: (err: SessionError, req: IncomingMessage) => void;
  /** `undefined`: `next(err)`. */
  readonly onSaveError: ((err: unknown, req: IncomingMessage, res: ServerResponse) => void) | undefined;
}

export class RequestSession implements HeaderListener, SessionOwner {
  private session: Session | undefined;
  private loading: Promise<Session> | undefined;
  private ctx: SessionContext | undefined;
  private hooked = false;
  /** The check for changes after the end is scheduled. */
  private endChecked = false;
  /** Saving before the headers failed: the error went to the application, not to onLostChange. */
  private saveFailed = false;
  /** The dump in progress (save(), or before the headers): the next one waits for it. */
  private saving: Promise<void> | undefined;
  /** JSON of the session when it was last saved; `undefined` until then. */
  private savedJson: string | undefined;
  /** Cookies dumped before the headers (by save()): they go out with the headers. */
  private pending: Cookie[] | undefined;
  /** The cookies sent with the headers: what the browser holds afterwards, with its request's. */
  private sent: Cookie[] | undefined;

  constructor(
    private readonly settings: RequestSessionSettings,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly next: (err?: unknown) => void,
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
  preload(): void {
    this.load().then(() => this.next(), this.next);
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
    const sent = this.res.headersSent;
    if (sent) {
      this.savedJson = sessionJson(this.session, 0);
      if (this.res.writableEnded) return this.ended();
    }
    // A store that loads with I/O saves with I/O: its response is held while it does.
    hookResponse(this.res, this, this.settings.loadsAsync, sent);
  }

  /**
   * HeaderListener: the handler ended the response. A change made from now on reaches no store
   * and no browser: checked once the handler's code that follows `end` has run, and reported.
   */
  ended(): void {
    if (this.endChecked) return;
    this.endChecked = true;
    setImmediate(() => this.checkAfterEnd());
  }

  /** SessionOwner: `regenerate()` makes `replacement` the request's session. */
  replace(session: Session, replacement: Session): void {
    this.current(session, "regenerate");
    this.serve(replacement);
  }

  /** SessionOwner: `save()` dumps now, after any dump in progress (a synchronous store's at once). */
  save(session: Session): Promise<void> {
    this.current(session, "save");
    if (this.saving === undefined && !this.settings.loadsAsync) {
      try {
        return Promise.resolve(this.dumpNow());
      } catch (err) {
        return Promise.reject(err);
      }
    }
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
    for (const cookie of [...(this.pending ?? []), ...(this.sent ?? [])]) {
      if (cookie.isExpired) delete cookies[cookie.name];
      else cookies[cookie.name] = cookie.value;
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

  /**
   * A dump outside the headers: its cookies go out with the headers if they have not left, else
   * must already be in the browser. Synchronous for a synchronous store.
   */
  private dumpNow(): void | Promise<void> {
    const session = this.session as Session;
    if (isNewAndEmpty(session)) return;
    const json = sessionJson(session, 0);
    const done = (dumped: Cookie | Cookie[]) => {
      Session.saved(session);
      const cookies = Array.isArray(dumped) ? dumped : [dumped];
      if (!this.res.headersSent) {
        this.pending = merge(this.pending, cookies);
      } else if (this.lostCookie(cookies)) {
        // Not marked as saved: the end of the response reports it too, for callers that did not look.
        throw this.lostError("the store needs a new cookie, and the headers had already been sent");
      }
      if (this.session === session) this.savedJson = json;
    };
    const dumped = this.dump(session, json as string);
    return isPromiseLike(dumped) ? Promise.resolve(dumped).then(done) : done(dumped);
  }

  /** The store's dump, lent the session's JSON just made for the change check, so that it need not make it again. */
  private dump(session: Session, json: string): ReturnType<SessionStore["dump"]> {
    Session.lendJson(session, json);
    try {
      return this.settings.store.dump(session, this.context());
    } finally {
      Session.lendJson(session, undefined);
    }
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
    const failed = (err: unknown) => {
      this.saveFailed = true;
      throw err;
    };
    let dumped: Cookie | Cookie[] | Promise<Cookie | Cookie[]>;
    try {
      const json = sessionJson(session, 0) as string;
      this.savedJson = json;
      dumped = this.dump(session, json);
    } catch (err) {
      return failed(err);
    }
    const done = (cookies: Cookie | Cookie[]) => {
      Session.saved(session);
      return this.sendCookies(Array.isArray(cookies) ? cookies : [cookies]);
    };
    if (!isPromiseLike(dumped)) return done(dumped);
    const cookies = Promise.resolve(dumped).then(done, failed);
    this.track(cookies);
    return cookies;
  }

  /** The Set-Cookie values: what save() dumped, overridden by the last dump; remembered for late saves. */
  private sendCookies(cookies: Cookie[]): string[] {
    const all = this.pending === undefined ? cookies : merge(this.pending, cookies);
    this.pending = undefined;
    this.sent = all;
    return all.map((cookie) => cookie.serialize());
  }

  /** HeaderListener: saving failed before the headers; the error response is the application's to write. */
  failed(err: unknown): void {
    const { onSaveError } = this.settings;
    if (onSaveError === undefined) this.next(err);
    else onSaveError(err, this.req, this.res);
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
      dumped = this.dump(session, json as string);
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
      const sent = this.sent?.find((c) => c.name === cookie.name);
      const known = sent === undefined ? ctx.cookies[cookie.name] : sent.isExpired ? undefined : sent.value;
      return cookie.isExpired ? known !== undefined : known !== cookie.value;
    });
  }

  /** After the end: a change since the last save reached neither the store nor the browser. */
  private checkAfterEnd(): void {
    // A save still in flight (an unawaited destroy() or save(), the dump before the headers)
    // sets what was saved when it completes: compare with that, not with what came before it.
    if (this.saving !== undefined) {
      void this.saving.then(() => this.checkAfterEnd());
      return;
    }
    if (this.saveFailed) return; // the error response told the client
    const session = this.session as Session;
    let changed: boolean;
    try {
      changed = this.savedJson === undefined ? !isNewAndEmpty(session) : sessionJson(session, 0) !== this.savedJson;
    } catch {
      changed = true; // data JSON cannot hold (too deep, a BigInt, a cycle): a throw here would end the process
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

/** `earlier` with `later`'s cookies in place of those of the same name. */
function merge(earlier: Cookie[] | undefined, later: Cookie[]): Cookie[] {
  if (earlier === undefined) return later;
  return [...earlier.filter((cookie) => !later.some((c) => c.name === cookie.name)), ...later];
}

/** `Vary: Cookie`, added to whatever `Vary` the handler set (the `vary` package merges; most responses have none). */
function addVaryCookie(res: ServerResponse): void {
  if (res.getHeader("Vary") === undefined) res.setHeader("Vary", "Cookie");
  else vary(res, "Cookie");
}

/** Created on this request and still holding nothing: never saved (SPEC §3.3). */
function isNewAndEmpty(session: Session): boolean {
  return Session.stateOf(session).loadedId === null && Session.isEmpty(session);
}
