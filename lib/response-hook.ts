/**
 * Holding one response's headers until its session is saved.
 *
 * Why: the session cookie has to be in the headers, and a store that saves over the network
 * only knows the cookie (and that the session is saved) once `dump` has finished. Node writes
 * the headers through `writeHead` (`write`, `end` and `flushHeaders` call it when they go
 * first), so `hookResponse` wraps it, and `end`, on the one response object whose session was
 * read, as on-headers does. Other responses, other servers and Node's prototypes are untouched.
 * Each property added to a response costs V8 a new hidden class for it (Express gives each
 * response its own), so a store that saves synchronously gets only these two; one that saves
 * with I/O also gets `write` and `flushHeaders`, to hold the output while it saves.
 *
 * The first call that writes the headers asks the listener for its cookies:
 * - answered synchronously (cookie and memory stores): the cookies are added and the call
 *   goes through, in the same turn;
 * - answered with a Promise (stores that save with I/O): that call and every later one are
 *   queued, then replayed in order once it settles. `write` returns `false` while queued, so `stream.pipe(res)` and careful
 *   writers pause (back-pressure: at most a chunk per writer is held), and `'drain'` follows
 *   the replay. Once the handler has called `end`, the response is complete as far as it is
 *   concerned: headers are kept as they were then, and later output (an error handler's) is
 *   dropped, so a 2xx that was sent stays a 2xx;
 * - failed: the queued output is dropped and `failed` receives the error on a later turn, to
 *   answer with an error response instead (reached through Node's own `write`, which would go
 *   on to write the body, the error is thrown to the caller). A client never sees a 2xx for a
 *   lost session.
 *
 * When the headers left before `end` (streaming, or sent past the wrappers: a `writeHead`
 * captured earlier, `res.writeHeader`), `end` first lets the listener save late changes.
 */
import type { ServerResponse } from "node:http";
import { SessionUsageError } from "./errors";
import { isPromiseLike } from "./store";

/** What a hooked response asks of the session. */
export interface HeaderListener {
  /** Called once, just before the headers are written: the `Set-Cookie` values to add, now or as a Promise. */
  beforeHeaders(): string[] | PromiseLike<string[]>;
  /** `beforeHeaders` failed; the output was dropped. Called on a later turn. */
  failed(err: unknown): void;
  /** `end`, when the headers left before it. May return a Promise the end waits for; never throws. */
  beforeEnd(): void | PromiseLike<void>;
  /** The handler ended the response (its output may still be held). */
  ended(): void;
}

/** The response methods that write headers, as the hook sees them (Node's, or another middleware's wrappers). */
type Method = "writeHead" | "write" | "end" | "flushHeaders";
type Call = [method: Method, args: unknown[]];
type ResponseMethod = (...args: unknown[]) => unknown;

/** Node's `ServerResponse`, or `node:http2`'s compatibility `Http2ServerResponse`: both have what the hook needs. */
export type HookableResponse = Pick<ServerResponse, "getHeader" | "setHeader" | "removeHeader" | "getHeaders" | "headersSent" | "statusCode" | "writableEnded"> &
  Record<Method, ResponseMethod> & { emit(event: string): boolean; destroy(): unknown; statusMessage?: string };

const BODY_HEADERS = ["Content-Length", "Content-Type", "Content-Encoding", "ETag", "Last-Modified"];
const NO_COOKIES: readonly string[] = [];

/**
 * Makes `listener.beforeHeaders` run, and complete, before the headers of `res` are written.
 * `hold`: the listener may answer with a Promise, so output is held meanwhile. `sent`:
 * `res.headersSent` now. Throws a `SessionUsageError` for an object that is not a Node response.
 */
export function hookResponse(res: ServerResponse, listener: HeaderListener, hold: boolean, sent: boolean): void {
  new ResponseHook(res as unknown as HookableResponse, listener, hold, sent);
}

/** One response's hook: the queue of calls made while the listener's Promise is pending. */
class ResponseHook {
  /**
   * open: the headers have not been asked for; holding: waiting for the listener; failed: it
   * failed, output is dropped until `failed` runs; released: calls pass through.
   */
  private phase: "open" | "holding" | "failed" | "released" = "open";
  /** The headers left before `end`: `beforeEnd` is owed. */
  private streamed = false;
  private queue: Call[] | undefined;
  private owesDrain = false;
  /** The status and headers when the first call was held: to the handler, they were sent then. */
  private head: Head | undefined;
  /** The handler's `end` is queued: later output (an error handler's) is dropped, and the head restored. */
  private ended = false;
  /** The head changed after it was sent (an error page started over a stream): the response is aborted. */
  private broken = false;
  private cookies: readonly string[] = NO_COOKIES;
  /** The methods the hook wraps, as they were (Node's, or another middleware's wrappers). */
  private readonly original: Partial<Record<Method, ResponseMethod>> = {};

  constructor(
    private readonly res: HookableResponse,
    private readonly listener: HeaderListener,
    private readonly hold: boolean,
    sent: boolean,
  ) {
    // What a held call returns: `write` false (the writer pauses until 'drain'), the others as Node's do.
    this.wrap("writeHead", res);
    this.wrap("end", res);
    if (hold) {
      this.wrap("write", false);
      this.wrap("flushHeaders", undefined);
    }
    // Read for the first time after the headers left: late changes are saved at the end.
    if (sent) {
      this.phase = "released";
      this.streamed = true;
    }
  }

  private wrap(method: Method, held: unknown): void {
    const original = this.res[method];
    if (typeof original !== "function") {
      throw new SessionUsageError(
        `sessions() cannot hold the headers of this response: it has no ${method}() method. The session middleware needs a node:http ServerResponse or a node:http2 Http2ServerResponse`,
      );
    }
    this.original[method] = original;
    this.res[method] = (...args: unknown[]) => this.intercept(method, args, held);
  }

  private intercept(method: Method, args: unknown[], held: unknown): unknown {
    if (method === "end" && this.phase !== "failed") this.listener.ended();
    switch (this.phase) {
      case "released":
        if (method === "end" && this.streamed && !this.res.writableEnded) return this.endAfterStreaming(args);
        return this.call(method, args);
      case "holding":
        return this.enqueue(method, args, held);
      case "failed":
        return held;
      case "open":
        // Headers sent past the wrappers (a writeHead captured earlier, res.writeHeader): as if streamed.
        if (this.res.headersSent) {
          this.phase = "released";
          this.streamed = true;
          return this.intercept(method, args, held);
        }
        return this.start(method, args, held);
    }
  }

  private call(method: Method, args: unknown[]): unknown {
    if (method === "writeHead" && this.cookies.length > 0) args = addToWriteHead(args, this.cookies);
    return (this.original[method] as ResponseMethod).apply(this.res, args);
  }

  /** The first call that writes the headers: ask for the cookies, and hold the output while they are pending. */
  private start(method: Method, args: unknown[], held: unknown): unknown {
    let cookies: string[] | PromiseLike<string[]>;
    try {
      cookies = this.listener.beforeHeaders();
    } catch (err) {
      // Node's own write and flushHeaders would write the body after this writeHead returned,
      // with no headers: throw to their caller instead (Express then answers the error).
      if (!this.hold && method === "writeHead") {
        this.phase = "released";
        throw err;
      }
      this.drop(err);
      return held;
    }
    this.streamed = method !== "end";
    if (!isPromiseLike(cookies)) {
      this.addCookies(cookies);
      this.phase = "released";
      return this.call(method, args);
    }
    if (!this.hold) {
      this.drop(new SessionUsageError("the store's dump() returned a Promise but the store is not marked asynchronous: give the store `async = true` so that sessions() holds the response while it saves"));
      return held;
    }
    this.phase = "holding";
    Promise.resolve(cookies)
      .then((value) => this.settle(value))
      .catch((err: unknown) => this.drop(err));
    return this.enqueue(method, args, held);
  }

  /** `end` after the headers left: let the listener save late changes before the response completes. */
  private endAfterStreaming(args: unknown[]): unknown {
    this.streamed = false;
    const pending = this.listener.beforeEnd();
    if (!isPromiseLike(pending) || !this.hold) return this.call("end", args);
    this.phase = "holding";
    const release = () => this.release();
    pending.then(release, release);
    return this.enqueue("end", args, this.res);
  }

  private enqueue(method: Method, args: unknown[], held: unknown): unknown {
    if (this.ended || this.broken) return held;
    if (this.head === undefined) {
      if (!this.res.headersSent) this.head = headOf(this.res);
    } else if (!sameHead(this.head, this.res)) {
      // Node would have refused this (to the handler, the headers were sent): abort rather than splice.
      this.broken = true;
      return held;
    }
    (this.queue ??= []).push([method, args]);
    if (method === "write") this.owesDrain = true;
    if (method === "end") this.ended = true;
    return held;
  }

  /** The cookies are known: the head as it was sent (to the handler), plus the cookies; then the queue. */
  private settle(cookies: string[]): void {
    if (this.head !== undefined && this.ended) restoreHead(this.res, this.head);
    this.addCookies(cookies);
    this.release();
  }

  private addCookies(cookies: string[]): void {
    this.cookies = cookies;
    if (cookies.length === 0) return;
    const existing = this.res.getHeader("set-cookie");
    this.res.setHeader("Set-Cookie", existing === undefined ? cookies : toList(existing).concat(cookies));
  }

  /** Replays the queue through `intercept`, so a queued `end` after writes still runs `beforeEnd`. */
  private release(): void {
    this.phase = "released";
    const calls = this.queue ?? [];
    const broken = this.broken;
    this.queue = undefined;
    this.head = undefined;
    this.ended = false;
    this.broken = false;
    let lastWrite = true;
    let ended = false;
    try {
      for (const [method, args] of calls) {
        // A wrapper outside ours that checks res._header (compression) queues Node's implicit
        // writeHead(statusCode) once per write: once the headers are out, the repeats are no-ops.
        if (method === "writeHead" && this.res.headersSent && args.length === 1 && args[0] === this.res.statusCode) continue;
        const result = this.intercept(method, args, undefined);
        if (method === "write") lastWrite = result as boolean;
        if (method === "end") ended = true;
      }
    } catch (err) {
      // A replayed call threw (a bad status code, say): the handler is gone, so report it.
      this.drop(err);
      return;
    }
    if (broken) {
      this.res.destroy();
      return;
    }
    // A writer we paused waits for 'drain'. Node emits it itself when the last write really
    // filled the socket; otherwise nobody would, so we do.
    if (this.owesDrain && lastWrite && !ended) this.res.emit("drain");
    this.owesDrain = false;
  }

  private drop(err: unknown): void {
    this.queue = undefined;
    this.head = undefined;
    this.ended = false;
    this.broken = false;
    this.owesDrain = false;
    this.streamed = false;
    this.phase = "failed";
    // The headers that described the dropped body would mis-describe the error response written in its place.
    if (!this.res.headersSent) for (const name of BODY_HEADERS) this.res.removeHeader(name);
    setImmediate(() => {
      this.phase = "released";
      this.listener.failed(err);
    });
  }
}

/** A response's status and headers. */
interface Head {
  statusCode: number;
  statusMessage: string | undefined;
  headers: Record<string, unknown>;
}

function headOf(res: HookableResponse): Head {
  // getHeaders() gives a copy (Node's documented contract, in node:http and node:http2 alike).
  return { statusCode: res.statusCode, statusMessage: res.statusMessage, headers: res.getHeaders() };
}

function sameHead(head: Head, res: HookableResponse): boolean {
  if (res.statusCode !== head.statusCode) return false;
  const now = res.getHeaders();
  const names = Object.keys(now);
  return names.length === Object.keys(head.headers).length && names.every((name) => now[name] === head.headers[name]);
}

/** Puts back the status and headers of `head` (an error handler may have changed them since). */
function restoreHead(res: HookableResponse, head: Head): void {
  const now = res.getHeaders();
  for (const name of Object.keys(now)) if (!Object.hasOwn(head.headers, name)) res.removeHeader(name);
  for (const [name, value] of Object.entries(head.headers)) if (now[name] !== value) res.setHeader(name, value as string);
  res.statusCode = head.statusCode;
  if (head.statusMessage !== undefined) res.statusMessage = head.statusMessage;
}

/**
 * `writeHead(status, [message], headers)` replaces a `Set-Cookie` already set when `headers`
 * names one: put ours into that argument so both survive.
 */
function addToWriteHead(args: unknown[], cookies: readonly string[]): unknown[] {
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
