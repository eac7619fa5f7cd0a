/**
 * Every error this package throws is a `SessionError`: it has an HTTP `status`
 * (so Express's error handling answers with the right code), a stable `code`,
 * and a message that says what went wrong and what to do about it.
 */
export class SessionError extends Error {
  /** The HTTP status an error handler should answer with. */
  readonly status: number;
  /** Same as `status`, for frameworks that read `statusCode`. */
  readonly statusCode: number;
  /** A stable, machine-readable name for the failure. */
  readonly code: string;
  /** Server errors carry internal detail: error handlers should not show the message to clients. */
  readonly expose = false;

  constructor(message: string, status: number, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.status = status;
    this.statusCode = status;
    this.code = code;
  }
}

/** Wrong options given to `sessions(...)` or a store: thrown at start-up, never at the first request. */
export class SessionConfigError extends SessionError {
  constructor(message: string) {
    super(message, 500, "SESSION_CONFIG");
  }
}

/** The store's back end (Redis) is down, stalled or refused the command: answer 503 and retry later. */
export class SessionStoreUnavailableError extends SessionError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 503, "SESSION_STORE_UNAVAILABLE", options);
  }
}

/** The session would not fit in the cookies a browser keeps (CookieStore `maxSize`), or nests too deep to be saved again (any store). */
export class SessionTooLargeError extends SessionError {
  constructor(message: string) {
    super(message, 500, "SESSION_TOO_LARGE");
  }
}

/** The session was used in a way the lifecycle does not allow (read before load, changed after the headers left). */
export class SessionUsageError extends SessionError {
  constructor(message: string) {
    super(message, 500, "SESSION_USAGE");
  }
}
