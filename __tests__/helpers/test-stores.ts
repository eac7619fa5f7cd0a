/**
 * Tiny stores for lifecycle tests: wrappers that count calls, delay `dump` (so the
 * response hook's hold path runs), or fail. They wrap the package's real stores.
 */
import type { Cookie } from "../../lib/cookie";
import { CookieStore } from "../../lib/cookie-store";
import { MemoryStore } from "../../lib/memory-store";
import type { Session } from "../../lib/session";
import type { SessionContext, SessionStore } from "../../lib/store";

export const SECRET = "a test secret that is long enough for the store";

export function cookieStore(): CookieStore {
  return new CookieStore({ secret: SECRET });
}

export function memoryStore(): MemoryStore {
  // touchAfter 0: the response-path tests expect the id cookie on every response that saves.
  return new MemoryStore({ secret: SECRET, touchAfter: 0 });
}

/** Resolves after `ms` milliseconds (`0`: on the next turn of the event loop). */
export function delay(ms = 0): Promise<void> {
  return new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));
}

/** A Promise with its resolve function, to hold a store call until the test lets it go. */
export class Gate {
  readonly promise: Promise<void>;
  open!: () => void;
  constructor() {
    this.promise = new Promise((resolve) => (this.open = resolve));
  }
}

/** Counts `load` and `dump` calls of a synchronous store. */
export class CountingStore implements SessionStore {
  readonly async = false;
  loads = 0;
  dumps = 0;

  constructor(readonly inner: SessionStore = cookieStore()) {}

  load(ctx: SessionContext): Session {
    this.loads++;
    return this.inner.load(ctx) as Session;
  }

  dump(session: Session, ctx: SessionContext): Cookie | Cookie[] {
    this.dumps++;
    return this.inner.dump(session, ctx) as Cookie | Cookie[];
  }
}

/**
 * An asynchronous store, as a network store would be: `load` answers on a later turn and
 * `dump` answers after `wait` (default 20 ms). By default the save itself happens only
 * then, so a response that left before `dump` resolved would reach the client before its
 * session was saved. With `saveFirst`, the session is saved (serialized) when `dump` is
 * called and only the reply waits, as a store that sends its command at once.
 */
export class SlowStore implements SessionStore {
  readonly async = true;
  loads = 0;
  dumps = 0;
  readonly wait: () => Promise<void>;
  readonly saveFirst: boolean;

  constructor(
    readonly inner: SessionStore = memoryStore(),
    options: { wait?: () => Promise<void>; saveFirst?: boolean } = {},
  ) {
    this.wait = options.wait ?? (() => delay(20));
    this.saveFirst = options.saveFirst ?? false;
  }

  async load(ctx: SessionContext): Promise<Session> {
    this.loads++;
    await delay();
    return this.inner.load(ctx);
  }

  async dump(session: Session, ctx: SessionContext): Promise<Cookie | Cookie[]> {
    this.dumps++;
    if (this.saveFirst) {
      const cookies = await this.inner.dump(session, ctx);
      await this.wait();
      return cookies;
    }
    await this.wait();
    return this.inner.dump(session, ctx);
  }
}

/** A store whose `dump` throws (`"throw"`) or rejects (`"reject"`) with `error`. */
export class FailingStore implements SessionStore {
  readonly async: boolean;

  constructor(
    readonly how: "throw" | "reject",
    readonly error: Error,
    readonly inner: SessionStore = cookieStore(),
  ) {
    this.async = how === "reject";
  }

  load(ctx: SessionContext): Session | Promise<Session> {
    const session = this.inner.load(ctx) as Session;
    return this.async ? Promise.resolve(session) : session;
  }

  dump(): Cookie[] | Promise<Cookie[]> {
    if (this.how === "throw") throw this.error;
    return delay().then(() => Promise.reject(this.error));
  }
}

/** An error with an HTTP status, as a store reports an unavailable back end. */
export function statusError(message: string, status: number): Error {
  return Object.assign(new Error(message), { status });
}
