/**
 * Holding the response's headers until the session is saved.
 *
 * Why this exists: the session cookie has to be in the response headers, and for a store
 * that saves over the network the cookie (and the promise that the session is saved) is
 * only known once `dump` has finished. Node writes the headers on the first `writeHead`,
 * `write`, `end` or `flushHeaders`, so those four calls are wrapped. The first of them
 * starts `prepare` (which runs `dump`):
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
 * The wrappers stay in place for the life of the response and pass calls straight through
 * once released, so middleware that wraps `res.write` after us (compression) keeps working.
 */
import type { ServerResponse } from "node:http";
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
type Fn = (...args: unknown[]) => unknown;

/** Wraps `res` so that `hold.prepare` completes before the headers are written. */
export function holdHeaders(res: ServerResponse, hold: HeaderHold): void {
  const original = {
    writeHead: res.writeHead as unknown as Fn,
    write: res.write as unknown as Fn,
    end: res.end as unknown as Fn,
    flushHeaders: res.flushHeaders as unknown as Fn,
  };
  /**
   * open: nothing written yet; holding: waiting for a Promise; failed: `prepare` failed,
   * output is swallowed until `fail` runs; released: pass-through.
   */
  let phase: "open" | "holding" | "failed" | "released" = "open";
  /** Set when the headers left before `end`: `finish` is owed at `end`. */
  let streamed = false;
  let queue: Call[] = [];
  let owesDrain = false;
  let cookies: string[] = [];

  function call(method: Method, args: unknown[]): unknown {
    if (method === "writeHead" && cookies.length > 0) args = addToWriteHead(args, cookies);
    return original[method].apply(res, args);
  }

  /** Replays the queue through `intercept`, so a queued `end` after writes still runs `finish`. */
  function release(): void {
    phase = "released";
    const calls = queue;
    queue = [];
    let lastWrite = true;
    let ended = false;
    try {
      for (const [method, args] of calls) {
        const result = intercept(method, args, undefined);
        if (method === "write") lastWrite = result as boolean;
        if (method === "end") ended = true;
      }
    } catch (err) {
      // A replayed call threw (a bad status code, say): the handler is gone, so report it.
      drop(err);
      return;
    }
    // A writer we paused waits for 'drain'. Node emits it itself when the last write
    // really filled the socket; otherwise nobody would, so we do.
    if (owesDrain && lastWrite && !ended) res.emit("drain");
    owesDrain = false;
  }

  function settle(result: string[]): void {
    cookies = result;
    addCookies(res, result);
    release();
  }

  function drop(err: unknown): void {
    queue = [];
    owesDrain = false;
    streamed = false;
    phase = "failed";
    // The dropped body's length would corrupt the error response written in its place.
    if (!res.headersSent) res.removeHeader("Content-Length");
    setImmediate(() => {
      phase = "released";
      hold.fail(err);
    });
  }

  /** The first call that would write the headers: run `prepare`, hold the output while it is pending. */
  function start(method: Method, args: unknown[], held: unknown): unknown {
    let result: string[] | PromiseLike<string[]>;
    try {
      result = hold.prepare(method === "end");
    } catch (err) {
      drop(err);
      return held;
    }
    streamed = method !== "end";
    if (!isPromiseLike(result)) {
      cookies = result;
      addCookies(res, result);
      phase = "released";
      return call(method, args);
    }
    phase = "holding";
    // To the application the headers left with the first held call: an error handler that
    // checks must not start a second response, which the replay would splice into the first.
    // (Defined only here: defineProperty is a slow path, and sync stores never hold.)
    const proto = Object.getPrototypeOf(res) as object;
    Object.defineProperty(res, "headersSent", {
      configurable: true,
      get: () => phase === "holding" || (Reflect.get(proto, "headersSent", res) as boolean),
    });
    // settle only throws when the headers were sent behind our back (setHeader refuses).
    Promise.resolve(result).then(settle).catch(drop);
    return enqueue(method, args, held);
  }

  /** `end` after the headers left: let `finish` save late changes before the response completes. */
  function finishThenEnd(args: unknown[]): unknown {
    streamed = false;
    const pending = hold.finish();
    if (!isPromiseLike(pending)) return call("end", args);
    phase = "holding";
    pending.then(release, release);
    return enqueue("end", args, res);
  }

  function enqueue(method: Method, args: unknown[], held: unknown): unknown {
    queue.push([method, args]);
    if (method === "write") owesDrain = true;
    return held;
  }

  function intercept(method: Method, args: unknown[], held: unknown): unknown {
    if (phase === "released") {
      return method === "end" && streamed && !res.writableEnded ? finishThenEnd(args) : call(method, args);
    }
    if (phase === "holding") return enqueue(method, args, held);
    if (phase === "failed") return held;
    return start(method, args, held);
  }

  res.writeHead = function writeHead(...args: unknown[]) {
    // While held, code that reads res.statusCode (loggers, the handler itself) sees the status.
    if (phase !== "released") res.statusCode = args[0] as number;
    return intercept("writeHead", args, res);
  } as typeof res.writeHead;
  res.write = function write(...args: unknown[]) {
    return intercept("write", args, false);
  } as typeof res.write;
  res.end = function end(...args: unknown[]) {
    return intercept("end", args, res);
  } as typeof res.end;
  res.flushHeaders = function flushHeaders() {
    intercept("flushHeaders", [], undefined);
  };
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
