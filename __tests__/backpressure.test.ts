/**
 * SPEC §3.4, last paragraph: bytes written while `dump` is pending are held with
 * back-pressure (`res.write` returns `false`, `'drain'` follows), never buffered without
 * bound. The store here is a MemoryStore whose `dump` answers only when the test opens a gate.
 */
import { get, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import type { Request, Response } from "express";
import { sessions } from "../lib";
import type { SessionStore } from "../lib/store";
import { closeServers, express5App, serveForTest, setCookies } from "./helpers/apps";
import { cookieStore, delay, Gate, memoryStore, SlowStore } from "./helpers/test-stores";

afterEach(closeServers);

/** A GET that reports when the headers arrive and counts the body's bytes without keeping them. */
function fetchCounting(url: string): { headers: Promise<IncomingMessage>; body: Promise<{ bytes: number; text: string }>; arrived: () => boolean } {
  let arrived = false;
  let resolveHeaders!: (res: IncomingMessage) => void;
  const headers = new Promise<IncomingMessage>((resolve) => (resolveHeaders = resolve));
  const body = new Promise<{ bytes: number; text: string }>((resolve, reject) => {
    get(url, (res) => {
      arrived = true;
      resolveHeaders(res);
      let bytes = 0;
      let text = "";
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (text.length < 64) text += chunk.toString("latin1");
      });
      res.on("end", () => resolve({ bytes, text }));
      res.on("error", reject);
    }).on("error", reject);
  });
  return { headers, body, arrived: () => arrived };
}

/** Waits (a turn at a time, at most `limit`) until `condition` holds. */
async function until(condition: () => boolean, limit = 5000): Promise<void> {
  for (const started = Date.now(); !condition(); ) {
    if (Date.now() - started > limit) throw new Error("condition not reached");
    await delay(1);
  }
}

/** A store whose dump waits for `gate`, and an app with `route` behind `sessions(store)`. */
async function gated(route: (req: Request, res: Response) => void, store?: SessionStore) {
  const gate = new Gate();
  const slow = new SlowStore(memoryStore(), { wait: () => gate.promise });
  const app = express5App(sessions(store ?? slow));
  app.get("/p", route);
  const { url } = await serveForTest(app);
  return { gate, store: slow, url };
}

describe("while an asynchronous dump is pending", () => {
  it("the first res.write returns false, 'drain' follows, and the body arrives whole with the cookie", async () => {
    const seen: { first?: boolean; drains: number; endedAtDrain?: boolean } = { drains: 0 };
    const { gate, store, url } = await gated((req, res) => {
      req.session.user = "ann";
      res.on("drain", () => seen.drains++);
      seen.first = res.write("hello ");
      res.once("drain", () => res.end("world"));
    });
    const request = fetchCounting(`${url}/p`);
    await until(() => store.dumps === 1);
    await delay(20);
    expect(seen.first).toBe(false);
    expect(seen.drains).toBe(0);
    expect(request.arrived()).toBe(false); // nothing left the server: the headers wait for dump
    gate.open();
    const res = await request.headers;
    expect(setCookies(res).some((line) => line.startsWith("session="))).toBe(true);
    expect(res.headers["transfer-encoding"]).toBe("chunked");
    expect((await request.body).text).toBe("hello world");
    expect(seen.drains).toBe(1);
  });

  it("a writer that ended while held gets no 'drain'", async () => {
    let drains = 0;
    const { gate, store, url } = await gated((req, res) => {
      req.session.user = "ann";
      res.on("drain", () => drains++);
      res.write("a");
      res.end("b");
    });
    const request = fetchCounting(`${url}/p`);
    await until(() => store.dumps === 1);
    gate.open();
    expect((await request.body).text).toBe("ab");
    expect(drains).toBe(0);
  });

  it("a held write too big for the socket gets exactly one 'drain', from Node once the socket empties", async () => {
    const size = 8 * 1024 * 1024;
    let drains = 0;
    let first: boolean | undefined;
    const { gate, store, url } = await gated((req, res) => {
      req.session.user = "ann";
      res.on("drain", () => drains++);
      first = res.write(Buffer.alloc(size, 97));
      res.once("drain", () => setTimeout(() => res.end(), 20));
    });
    const request = fetchCounting(`${url}/p`);
    await until(() => store.dumps === 1);
    gate.open();
    expect((await request.body).bytes).toBe(size);
    expect(first).toBe(false);
    expect(drains).toBe(1);
  });

  it("a 50 MB stream piped into res stays paused: the source produces about one chunk until dump resolves", async () => {
    const total = 50 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 120);
    let produced = 0;
    const { gate, store, url } = await gated((req, res) => {
      req.session.user = "ann";
      res.setHeader("Content-Type", "application/octet-stream");
      const source = new Readable({
        read() {
          if (produced >= total) {
            this.push(null);
            return;
          }
          produced += chunk.length;
          this.push(chunk);
        },
      });
      source.pipe(res);
    });
    const request = fetchCounting(`${url}/p`);
    await until(() => store.dumps === 1);
    await delay(50); // give an unbounded buffer every chance to fill
    const producedWhileHeld = produced;
    // One chunk held by us, at most a couple more in the source's own buffer; never the stream.
    expect(producedWhileHeld).toBeGreaterThan(0);
    expect(producedWhileHeld).toBeLessThanOrEqual(4 * chunk.length);
    expect(request.arrived()).toBe(false);
    gate.open();
    const res = await request.headers;
    expect(setCookies(res).some((line) => line.startsWith("session="))).toBe(true);
    expect((await request.body).bytes).toBe(total);
    expect(produced).toBe(total);
  });
});

describe("with a synchronous store", () => {
  it("nothing is held: the first res.write goes straight through and returns true", async () => {
    let first: boolean | undefined;
    const { url } = await gated((req, res) => {
      req.session.user = "ann";
      first = res.write("direct ");
      res.end("write");
    }, cookieStore());
    const request = fetchCounting(`${url}/p`);
    const res = await request.headers;
    expect(setCookies(res).some((line) => line.startsWith("session="))).toBe(true);
    expect((await request.body).text).toBe("direct write");
    expect(first).toBe(true);
  });
});
