/**
 * Where this package keeps a request's state (its session handle, its response hold) without
 * adding properties to `req` or `res`.
 *
 * Express gives every request and response a new prototype (`Object.setPrototypeOf(req,
 * app.request)`) and then adds its own properties to them. After a prototype switch V8 stops
 * sharing hidden classes between such objects, so each property added to `req` or `res` from
 * then on builds a new hidden class for that one object. Measured with callgrind on an Express
 * server over HTTP (bench/instructions-http.mjs), moving the request state and the response
 * hold from `req` and `res` to here took a CookieStore read from 599,000 to 566,000
 * instructions per request, leaving the garbage collector out (the floor: 517,000). A WeakMap
 * from request and response to their state cost more still (its entries reach their keys,
 * and the garbage collector traces them).
 *
 * `req.rawHeaders`, the array Node's HTTP parser makes for each request, keeps V8's ordinary
 * array hidden class, so a property added to it follows a transition V8 has already built. The
 * state lives there, under registered symbols (several copies of this package share them) and
 * non-enumerable (`console.log(req.rawHeaders)` and JSON do not show it). A request without
 * such an array (a hand-made mock, another framework) keeps it on itself.
 */
import type { IncomingMessage } from "node:http";

/** An object that carries slots: a request's `rawHeaders`, or the request (or response) itself. */
export type SlotCarrier = Record<symbol, unknown>;

/** The object that carries `req`'s slots: its `rawHeaders` array, or the request itself. */
export function carrierOf(req: IncomingMessage): SlotCarrier {
  const raw: unknown = req.rawHeaders;
  return (Array.isArray(raw) ? raw : req) as unknown as SlotCarrier;
}

/** What a slot keeps: state that belongs to one request or response, its `owner`. */
export interface SlotValue {
  readonly owner: object;
}

/**
 * What `owner` keeps under `key` on `carrier` (the carrier of its request). The carrier's value
 * when it belongs to `owner`, or to an object `owner` derives from (`Object.create(req)` shares
 * the request's state, as it shares its rawHeaders). When it belongs to another request or
 * response (two hand-made requests can share one rawHeaders array), what `owner` keeps on itself.
 */
export function findSlot(carrier: SlotCarrier, owner: object, key: symbol): SlotValue | undefined {
  const value = carrier[key] as SlotValue | undefined;
  if (value === undefined || value.owner === owner) return value;
  for (let o = Object.getPrototypeOf(owner) as object | null; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (o === value.owner) return value;
  }
  return (owner as SlotCarrier)[key] as SlotValue | undefined;
}

/** Keeps `value` under `key`, non-enumerable: on `carrier`, or on its owner when the carrier holds another owner's value. */
export function keepInSlot(carrier: SlotCarrier, key: symbol, value: SlotValue): void {
  const other = carrier[key] as SlotValue | undefined;
  const home = other === undefined || other.owner === value.owner ? carrier : (value.owner as SlotCarrier);
  Object.defineProperty(home, key, { value, writable: true, configurable: true, enumerable: false });
}
