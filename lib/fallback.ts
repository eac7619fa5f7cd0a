/**
 * `sessions(store, { fallback })`: moving users from an old session store to a new one without
 * signing anyone out (SPEC §10). When `store` has no session for a request, `fallback` is
 * asked; a session found there moves into `store` under a new id, and in that same response
 * the old record is deleted and the old cookie expired.
 */
import type { IncomingMessage } from "node:http";
import type { Cookie } from "./cookie";
import { SessionConfigError } from "./errors";
import { Session } from "./session";
import { isPromiseLike, isSessionStore, loadsAsynchronously, type SessionContext, type SessionStore } from "./store";

/** `store`, falling back to `fallback` for requests that `store` has no session for. */
export class FallbackStore implements SessionStore {
  /** I/O in either store makes the pair load before the handlers. */
  readonly async: boolean;
  /** Per request, the fallback's session while it moves: deleted from the fallback once `store` saved its copy. */
  private readonly moving = new WeakMap<IncomingMessage, Session>();

  constructor(
    readonly store: SessionStore,
    readonly fallback: SessionStore,
  ) {
    if (!isSessionStore(fallback)) {
      throw new SessionConfigError(
        "sessions() options: fallback must be a store (an object with load and dump), such as new ExpressSessionStore({ store, secret }) over the old store, or new CookieSessionReader({ keys })",
      );
    }
    this.async = loadsAsynchronously(store) || loadsAsynchronously(fallback);
  }

  /**
   * `store`'s session, or, when it has none, the fallback's under a new id. The fallback is asked
   * only then: its `load` costs no I/O for a request without its cookie.
   */
  load(ctx: SessionContext): Session | Promise<Session> {
    return then(this.store.load(ctx), (session) => {
      if (Session.stateOf(session).loadedId !== null) return session;
      return then(this.fallback.load(ctx), (old) => {
        if (Session.stateOf(old).loadedId === null) return session;
        this.moving.set(ctx.req, old);
        // It replaces the old one, so it is saved even if the handler empties it: signing out on
        // this very request still deletes the old record.
        return Session.moved(old, session);
      });
    });
  }

  /**
   * Saves with `store`; after a move, once that save succeeded, also deletes the old session
   * through the fallback and adds the cookies that expire it, except any cookie `store` sets in
   * this response (the two stores' cookies may share a name, as cookie-session's and
   * CookieStore's `session` do).
   */
  dump(session: Session, ctx: SessionContext): Cookie | Cookie[] | Promise<Cookie | Cookie[]> {
    const old = this.moving.get(ctx.req);
    const saved = this.store.dump(session, ctx);
    if (old === undefined) return saved;
    return then(saved, (cookies) => {
      old.destroy();
      return then(this.fallback.dump(old, ctx), (expired) => {
        this.moving.delete(ctx.req);
        const kept = Array.isArray(cookies) ? cookies : [cookies];
        const names = new Set(kept.map((cookie) => cookie.name));
        return [...kept, ...(Array.isArray(expired) ? expired : [expired]).filter((cookie) => !names.has(cookie.name))];
      });
    });
  }
}

/** `fn(value)`, after `value` resolves if it is a Promise: synchronous stores stay synchronous. */
function then<T, U>(value: T | PromiseLike<T>, fn: (value: T) => U): U | Promise<Awaited<U>> {
  // then() flattens a Promise that fn returns, hence Awaited<U>.
  return isPromiseLike<T>(value) ? Promise.resolve(value).then((resolved) => fn(resolved) as Awaited<U>) : fn(value);
}
