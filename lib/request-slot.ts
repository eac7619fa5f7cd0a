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
 * array hidden class, so a field added to it follows a transition V8 has already built. The
 * state lives there in two private class fields, added to the array by the "return override"
 * idiom (a base constructor that returns the object it is given): nothing outside this file
 * can see them (not `Object.keys`, `Reflect.ownKeys`, `console.log` or JSON), and adding one
 * is an ordinary store. (Non-enumerable symbol properties, used before, took an
 * `Object.defineProperty` call each: writing the two slots took 7,900 instructions per `read`
 * request, the private fields take 1,100, counted with callgrind over HTTP with V8's inlining
 * off.) A request without such an array (a hand-made mock, another framework) keeps them on
 * itself.
 *
 * Several copies of this package in one process (or jest's module registries) must find each
 * other's state, so the first copy to load keeps its slot functions on
 * IncomingMessage.prototype under a registered symbol, and later copies use those.
 */
import { IncomingMessage } from "node:http";

/** An object that carries slots: a request's `rawHeaders`, or the request (or response) itself. */
export type SlotCarrier = object;

/** The two slots: the request's session state (middleware.ts) and its response's hold (response-hook.ts). */
export type SlotKind = "state" | "hold";

/** The object that carries `req`'s slots: its `rawHeaders` array, or the request itself. */
export function carrierOf(req: IncomingMessage): SlotCarrier {
  const raw: unknown = req.rawHeaders;
  return Array.isArray(raw) ? raw : req;
}

/** What a slot keeps: state that belongs to one request or response, its `owner`. */
export interface SlotValue {
  readonly owner: object;
}

/** What the copies share: reading and writing a slot of any object. */
interface SlotAccess {
  get(carrier: SlotCarrier, kind: SlotKind): SlotValue | undefined;
  set(carrier: SlotCarrier, kind: SlotKind, value: SlotValue): void;
}

const SHARED = Symbol.for("sessionbox.request-slots.v1");
const access = install();

/**
 * What `owner` keeps under `kind` on `carrier` (the carrier of its request). The carrier's value
 * when it belongs to `owner`, or to an object `owner` derives from (`Object.create(req)` shares
 * the request's state, as it shares its rawHeaders). When it belongs to another request or
 * response (two hand-made requests can share one rawHeaders array), what `owner` keeps on itself.
 */
export function findSlot(carrier: SlotCarrier, owner: object, kind: SlotKind): SlotValue | undefined {
  const value = access.get(carrier, kind);
  if (value === undefined || value.owner === owner) return value;
  for (let o = Object.getPrototypeOf(owner) as object | null; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (o === value.owner) return value;
  }
  return access.get(owner, kind);
}

/** Keeps `value` under `kind`: on `carrier`, or on its owner when the carrier holds another owner's value. */
export function keepInSlot(carrier: SlotCarrier, kind: SlotKind, value: SlotValue): void {
  const other = access.get(carrier, kind);
  access.set(other === undefined || other.owner === value.owner ? carrier : value.owner, kind, value);
}

function install(): SlotAccess {
  const proto = IncomingMessage.prototype as { [SHARED]?: SlotAccess };
  const existing = proto[SHARED];
  if (existing !== undefined) return existing;

  /** Its constructor returns the object it is given, so a subclass's fields are added to that object. */
  class Adopt {
    constructor(target: object) {
      return target;
    }
  }
  /** Adds both private fields to an object (once: a second `new` on the same object would throw). */
  class Slots extends Adopt {
    #state: SlotValue | undefined = undefined;
    #hold: SlotValue | undefined = undefined;

    static get(carrier: object, kind: SlotKind): SlotValue | undefined {
      if (!(#state in carrier)) return undefined;
      return kind === "state" ? carrier.#state : carrier.#hold;
    }

    static set(carrier: object, kind: SlotKind, value: SlotValue): void {
      if (!(#state in carrier)) new Slots(carrier);
      const slots = carrier as Slots;
      if (kind === "state") slots.#state = value;
      else slots.#hold = value;
    }
  }
  const created: SlotAccess = { get: Slots.get, set: Slots.set };
  Object.defineProperty(proto, SHARED, { value: created });
  return created;
}
