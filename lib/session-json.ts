/**
 * Session data as the JSON a store saves, refused when it nests too deep to be saved again.
 *
 * Why: `JSON.stringify` recurses on the call stack, so how deep it can go depends on how much
 * stack is left where it runs. Data saved from a shallow stack could then fail with a RangeError
 * on every later save made from a deeper one. A fixed limit, well below what the stack allows,
 * refuses such data at the request that writes it, with an error that says so.
 */
import { SessionTooLargeError } from "./errors";

/** The deepest a session may nest, the session object itself being the first level. */
export const MAX_NESTING = 1000;

/**
 * `JSON.stringify(value)` for a value `level` levels inside the session (0: the session itself,
 * 1: one of its fields). Throws a `SessionTooLargeError` when it nests too deep.
 */
export function sessionJson(value: unknown, level: number): string | undefined {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw tooDeep(`could not be turned into JSON (${err.message}): it is nested too deep or too large`);
  }
  if (json !== undefined && nestsDeeperThan(json, MAX_NESTING - level)) throw tooDeep(`is nested more than ${MAX_NESTING} levels deep`);
  return json;
}

/** `true` when the arrays and objects of `json` nest more than `limit` levels. */
function nestsDeeperThan(json: string, limit: number): boolean {
  // Each level takes two characters at least: shorter JSON cannot be too deep.
  if (json.length <= 2 * limit) return false;
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Skip the string, and its escaped quotes.
      for (i++; json.charCodeAt(i) !== 0x22; i++) if (json.charCodeAt(i) === 0x5c /* \ */) i++;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > limit) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return false;
}

function tooDeep(what: string): SessionTooLargeError {
  return new SessionTooLargeError(
    `the session cannot be saved: it ${what}, and data nested that deep could not be saved again. ` +
      `Keep such data out of the session (store it elsewhere and keep a reference), or flatten it`,
  );
}
