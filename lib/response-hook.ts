/**
 * Holding the response's headers until the session is saved.
 *
 * Why this exists: the session cookie has to be in the response headers, and for a store
 * that saves over the network the cookie (and the promise that the session is saved) is
 * only known once `dump` has finished. Node writes the headers on the first `writeHead`,
 * `write`, `end` or `flushHeaders`, so those four methods are wrapped, once, on
 * ServerResponse.prototype; a response whose session was read has a `Hold` (kept in a request
 * slot of its request), and every other response passes straight through. For a held response
 * the first of the four calls starts `prepare` (which runs `dump`):
 *
 * - If `prepare` answers synchronously (cookie and memory stores), its cookies are added
 *   and the call goes straight through: no queue, no extra tick.
 * - If it answers with a Promise, the call and every later one are queued in order. `write`
 *   returns `false` while queued, so `stream.pipe(res)` and well-behaved writers pause
 *   (back-pressure: at most one chunk per writer is held), and `res.headersSent` is `true`,
 *   as it would be without the hold. When the Promise settles the cookies are added, the
 *   calls replayed, and `'drain'` emitted if we owe one.
 * - If `prepare` fails, the queued calls (and the Content-Length that described them) are
 *   dropped, further output is swallowed, and on the next turn `fail` receives the error
 *   (the middleware hands it to Express's error handling, whose response goes through).
 *   So the client never sees a 2xx for a session that was not saved.
 *
 * After the headers have gone, an `end` that follows earlier writes calls `finish`, which
 * may save changes made while streaming; `end` waits for it too.
 *
 * Middleware that wraps `res.write` on the response itself (compression) sits in front of
 * the prototype's wrappers and keeps working, in whatever order it was mounted.
 */
import { type IncomingMessage, ServerResponse } from "node:http";
import { carrierOf, findSlot, keepInSlot, type SlotCarrier, type SlotValue } from "./request-slot";
import { isPromiseLike } from "./store";

export interface HeaderHold {
  /**
   * Called once, just before the headers are written. Returns `Set-Cookie` values to add,
   * synchronously or as a Promise. `final` is `true` when the triggering call is `end`,
   * i.e. no handler code can run between the headers and the end of the response.
   */
  prepare(final: boolean): string[] | PromiseLike<string[]>;
  /** `prepare` failed (called on a later turn): the output was dropped; answer with an error response. */
  fail(err: unknown): void;
  /**
   * Called at `end` when the headers left before it; may return a Promise that `end` waits
   * for. Must not throw: it reports its own failures (the response has to end regardless).
   */
  finish(): void | PromiseLike<void>;
}

type Method = "writeHead" | "write" | "end" | "flushHeaders";
type Call = [Method, unknown[]];
type Fn = (this: ServerResponse, ...args: unknown[]) => unknown;

/** What the wrappers need of a held response's state (whichever copy of this package made it). */
interface Interceptor extends SlotValue {
  intercept(method: Method, args: unknown[], held: unknown): unknown;
  /** `true` while calls are queued: `res.headersSent` answers `true` then. */
  readonly holding: boolean;
}

/**
 * A held response's state: kept in a request slot of `res.req` (request-slot.ts: not on `res`
 * itself, whose hidden class Express makes unique, so that a property added to it costs V8 a
 * new hidden class per response), or on `res` when it has no request. A response without it
 * passes straight through. Several copies of this package in one process (or jest's module
 * registries) share the slots and the wrappers below ("v4": v1 kept a WeakMap, v2 the state on
 * `res`, v3 a symbol property on rawHeaders, where a v4 copy would not look).
 */

/** What the wrappers share, kept on ServerResponse.prototype under a registered symbol (one per process, whichever copy installed them). */
interface Shared {
  /** `write`, `end`, `flushHeaders` of OutgoingMessage.prototype, `writeHead` of ServerResponse.prototype. */
  original: Record<Method, Fn>;
  /** The `headersSent` getter of OutgoingMessage.prototype. */
  headersSent: (this: ServerResponse) => boolean;
  /**
   * The response held last, and its hold: the wrappers of a response answered in the same turn
   * as its session was read (most are) find its hold without looking it up.
   */
  lastRes: ServerResponse | undefined;
  lastHold: Interceptor | undefined;
  /**
   * The response last found not held: Node's `end` calls `writeHead`, and both go through the
   * wrappers. Once a wrapper passed a call through, the headers are on their way, so no hold
   * can start for it later (holdHeaders clears this all the same).
   */
  lastFree: ServerResponse | undefined;
}
const SHARED = Symbol.for("sessionbox.response-hook.v4");
const shared = install();
const { original } = shared;

/**
 * The object that carries the hold of `res`: its request's slot carrier, or `res` when it has no
 * request. A caller that already has the carrier of a request (`known`, `knownCarrier`) saves
 * reading it again when that request is the response's.
 */
function holdCarrier(res: ServerResponse, known?: IncomingMessage, knownCarrier?: SlotCarrier): SlotCarrier {
  const req = res.req as IncomingMessage | undefined;
  if (req === undefined || req === null) return res as unknown as SlotCarrier;
  return req === known && knownCarrier !== undefined ? knownCarrier : carrierOf(req);
}

/** The hold of `res`, if it is held. `carrier`: the response's holdCarrier, when the caller has it already. */
function holdOf(res: ServerResponse, carrier?: SlotCarrier): Interceptor | undefined {
  if (res === shared.lastRes) return shared.lastHold;
  if (res === shared.lastFree) return undefined;
  const hold = findSlot(carrier ?? holdCarrier(res), res, "hold") as Interceptor | undefined;
  if (hold === undefined) shared.lastFree = res;
  return hold;
}

/** Node's own answer to `res.headersSent`. */
function headersWritten(res: ServerResponse): boolean {
  return shared.headersSent.call(res);
}

/**
 * Makes `hold.prepare` complete before the headers of `res` are written. Returns `false`, and
 * holds nothing, when the headers have already left (or another hold has them queued).
 * `req` and `carrier`, when given, are a request and its slot carrier (carrierOf) that the
 * caller already has: the response's own request, normally.
 */
export function holdHeaders(res: ServerResponse, hold: HeaderHold, req?: IncomingMessage, carrier?: SlotCarrier): boolean {
  // Reads res.req and its carrier once (each read of a property of `res` or `req` misses V8's
  // caches: Express gives them hidden classes of their own).
  const slots = holdCarrier(res, req, carrier);
  if (holdOf(res, slots)?.holding === true || headersWritten(res)) return false;
  const held = new Hold(res, hold);
  keepInSlot(slots, "hold", held);
  shared.lastRes = res;
  shared.lastHold = held;
  if (shared.lastFree === res) shared.lastFree = undefined;
  return true;
}

const NO_COOKIES: string[] = [];

/** One response's hold: the queue of calls made while `prepare` (or `finish`) is pending. */
class Hold {
  /**
   * open: nothing written yet; holding: waiting for a Promise; failed: `prepare` failed,
   * output is swallowed until `fail` runs; released: pass-through.
   */
  private phase: "open" | "holding" | "failed" | "released" = "open";
  /** Set when the headers left before `end`: `finish` is owed at `end`. */
  private streamed = false;
  /** Calls made while holding, in order (allocated when the first one is). */
  private queue: Call[] | undefined = undefined;
  private owesDrain = false;
  private cookies: string[] = NO_COOKIES;

  constructor(
    private readonly res: ServerResponse,
    private readonly hold: HeaderHold,
  ) {}

  /** SlotValue: the response held. */
  get owner(): ServerResponse {
    return this.res;
  }

  get holding(): boolean {
    return this.phase === "holding";
  }

  intercept(method: Method, args: unknown[], held: unknown): unknown {
    if (this.phase === "released") {
      return method === "end" && this.streamed && !this.res.writableEnded ? this.finishThenEnd(args) : this.call(method, args);
    }
    if (method === "writeHead") this.res.statusCode = args[0] as number; // visible to loggers while held
    if (this.phase === "holding") return this.enqueue(method, args, held);
    if (this.phase === "failed") return held;
    return this.start(method, args, held);
  }

  private call(method: Method, args: unknown[]): unknown {
    if (method === "writeHead" && this.cookies.length > 0) args = addToWriteHead(args, this.cookies);
    return original[method].apply(this.res, args);
  }

  /** The first call that would write the headers: run `prepare`, hold the output while it is pending. */
  private start(method: Method, args: unknown[], held: unknown): unknown {
    let result: string[] | PromiseLike<string[]>;
    try {
      result = this.hold.prepare(method === "end");
    } catch (err) {
      this.drop(err);
      return held;
    }
    this.streamed = method !== "end";
    if (!isPromiseLike(result)) {
      this.cookies = result;
      addCookies(this.res, result);
      this.phase = "released";
      return this.call(method, args);
    }
    // From here `res.headersSent` is true (see install): to the application the headers left
    // with the first held call, so an error handler that checks must not start a second
    // response, which the replay would splice into the first.
    this.phase = "holding";
    // settle only throws when the headers were sent behind our back (setHeader refuses).
    Promise.resolve(result)
      .then((cookies) => this.settle(cookies))
      .catch((err: unknown) => this.drop(err));
    return this.enqueue(method, args, held);
  }

  /** `end` after the headers left: let `finish` save late changes before the response completes. */
  private finishThenEnd(args: unknown[]): unknown {
    this.streamed = false;
    const pending = this.hold.finish();
    if (!isPromiseLike(pending)) return this.call("end", args);
    this.phase = "holding";
    const release = () => this.release();
    pending.then(release, release);
    return this.enqueue("end", args, this.res);
  }

  private enqueue(method: Method, args: unknown[], held: unknown): unknown {
    (this.queue ??= []).push([method, args]);
    if (method === "write") this.owesDrain = true;
    return held;
  }

  private settle(cookies: string[]): void {
    this.cookies = cookies;
    addCookies(this.res, cookies);
    this.release();
  }

  /** Replays the queue through `intercept`, so a queued `end` after writes still runs `finish`. */
  private release(): void {
    this.phase = "released";
    const calls = this.queue ?? [];
    this.queue = undefined;
    let lastWrite = true;
    let ended = false;
    try {
      for (const [method, args] of calls) {
        const result = this.intercept(method, args, undefined);
        if (method === "write") lastWrite = result as boolean;
        if (method === "end") ended = true;
      }
    } catch (err) {
      // A replayed call threw (a bad status code, say): the handler is gone, so report it.
      this.drop(err);
      return;
    }
    // A writer we paused waits for 'drain'. Node emits it itself when the last write
    // really filled the socket; otherwise nobody would, so we do.
    if (this.owesDrain && lastWrite && !ended) this.res.emit("drain");
    this.owesDrain = false;
  }

  private drop(err: unknown): void {
    this.queue = undefined;
    this.owesDrain = false;
    this.streamed = false;
    this.phase = "failed";
    // The dropped body's length would corrupt the error response written in its place.
    if (!this.res.headersSent) this.res.removeHeader("Content-Length");
    setImmediate(() => {
      this.phase = "released";
      this.hold.fail(err);
    });
  }
}

/**
 * Installs the four wrappers once per process, on ServerResponse.prototype, where every
 * response finds them; a response that is not held passes straight through. (Replacing the
 * methods on each response instead makes V8 give up on the response object's fast shape:
 * measured with callgrind, that cost more per request than the rest of the session handling.)
 */
function install(): Shared {
  const proto = ServerResponse.prototype as unknown as Record<Method, Fn> & { [SHARED]?: Shared };
  const existing = proto[SHARED];
  if (existing !== undefined) return existing;
  const shared: Shared = { original: {} as Record<Method, Fn>, headersSent: findGetter(proto, "headersSent"), lastRes: undefined, lastHold: undefined, lastFree: undefined };
  Object.defineProperty(proto, SHARED, { value: shared });
  for (const method of ["writeHead", "write", "end", "flushHeaders"] as const) {
    const node = proto[method];
    shared.original[method] = node;
    const held: unknown = method === "write" ? false : method === "flushHeaders" ? undefined : null;
    Object.defineProperty(proto, method, {
      configurable: true,
      writable: true,
      value: {
        [method](this: ServerResponse, ...args: unknown[]): unknown {
          const state = holdOf(this);
          if (state === undefined) return node.apply(this, args);
          return state.intercept(method, args, held === null ? this : held);
        },
      }[method],
    });
  }
  // `headersSent` (a getter on OutgoingMessage.prototype) answers `true` while a response is held.
  // Defined once here: defining it on each held response is a slow path for V8.
  const sent = shared.headersSent;
  Object.defineProperty(proto, "headersSent", {
    configurable: true,
    enumerable: true,
    get(this: ServerResponse): boolean {
      return holdOf(this)?.holding === true || sent.call(this);
    },
  });
  return shared;
}

/** The getter of `name` found first along the prototype chain from `proto`. */
function findGetter(proto: object, name: string): (this: ServerResponse) => boolean {
  for (let o: object | null = proto; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    const own = Object.getOwnPropertyDescriptor(o, name);
    if (own?.get !== undefined) return own.get as (this: ServerResponse) => boolean;
  }
  throw new Error(`sessionbox: ServerResponse has no ${name} getter in this Node version`);
}

/** Appends `cookies` to the `Set-Cookie` header already on `res` (from `res.cookie()` and the like). */
function addCookies(res: ServerResponse, cookies: string[]): void {
  if (cookies.length === 0) return;
  const existing = res.getHeader("set-cookie");
  res.setHeader("Set-Cookie", existing === undefined ? cookies : toList(existing).concat(cookies));
}

/**
 * `writeHead(status, [message], headers)` replaces a `Set-Cookie` already on `res` when its
 * `headers` name one: put ours into that argument so both survive. (Once other headers are
 * set, Node accepts a headers object or a flat `[name, value, ...]` array there.)
 */
function addToWriteHead(args: unknown[], cookies: string[]): unknown[] {
  const last = args.length - 1;
  const headers = args[last];
  if (Object(headers) !== headers) return args;
  const copy = args.slice();
  if (Array.isArray(headers)) {
    // Node 20 applies each pair with setHeader (the last pair of a name wins); later versions
    // remove the named headers, then append. One pair holding every Set-Cookie works in both.
    const theirs: string[] = [];
    const rest: unknown[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === "set-cookie") theirs.push(...toList(headers[i + 1]));
      else rest.push(headers[i], headers[i + 1]);
    }
    if (theirs.length === 0) return args;
    copy[last] = [...rest, "Set-Cookie", theirs.concat(cookies)];
    return copy;
  }
  const record = headers as Record<string, unknown>;
  const key = Object.keys(record).find((name) => name.toLowerCase() === "set-cookie");
  if (key === undefined) return args;
  copy[last] = { ...record, [key]: toList(record[key]).concat(cookies) };
  return copy;
}

function toList(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [String(value)];
}
