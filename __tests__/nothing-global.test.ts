/**
 * Nothing global (SPEC §3.8): loading the package and serving sessions changes nothing on
 * Node's own prototypes, and another server in the same process answers byte for byte as
 * before. The package is required only inside the test, after the "before" snapshot.
 */
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import express from "express";
import request from "supertest";
import type * as Package from "../lib";
import type { SessionStore } from "../lib";

type Descriptors = Map<PropertyKey, PropertyDescriptor>;

/** The own property descriptors of `object`, by key. */
function descriptorsOf(object: object): Descriptors {
  return new Map(Reflect.ownKeys(object).map((key) => [key, Object.getOwnPropertyDescriptor(object, key) as PropertyDescriptor]));
}

const prototypes = {
  IncomingMessage: http.IncomingMessage.prototype,
  ServerResponse: http.ServerResponse.prototype,
  OutgoingMessage: http.OutgoingMessage.prototype,
};

/** A server that does not use sessions: a metrics endpoint beside the app, say. */
function plainServer(): http.Server {
  return http.createServer((req, res) => {
    res.sendDate = false;
    res.setHeader("Content-Type", "text/plain");
    res.writeHead(200, { "X-Plain": "1" });
    res.write("chunk one;");
    res.end(`path ${req.url}`);
  });
}

/** The raw bytes of the answer to one request sent over a new connection (which it asks to close). */
async function rawAnswer(server: http.Server): Promise<Buffer> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => socket.write("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
      const chunks: Buffer[] = [];
      socket.setTimeout(5000, () => socket.destroy(new Error("no answer within 5 s")));
      socket.on("data", (chunk) => chunks.push(chunk));
      socket.on("end", () => resolve(Buffer.concat(chunks)));
      socket.on("error", reject);
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe("loading the package and serving sessions changes nothing outside it (SPEC §3.8)", () => {
  it("Node's IncomingMessage, ServerResponse and OutgoingMessage prototypes keep the same own properties, and another server answers byte for byte as before", async () => {
    const before = Object.fromEntries(Object.entries(prototypes).map(([name, proto]) => [name, descriptorsOf(proto)]));
    const answerBefore = await rawAnswer(plainServer());

    let pkg: typeof Package | undefined;
    jest.isolateModules(() => {
      pkg = require("../lib") as typeof Package;
    });
    const { sessions, CookieStore, MemoryStore } = pkg as typeof Package;
    // Serve sessions on a synchronous and an asynchronous store, reading and writing them.
    const memory = new MemoryStore();
    const slow: SessionStore = {
      async: true,
      load: async (ctx) => memory.load(ctx),
      dump: async (session, ctx) => memory.dump(session, ctx),
    };
    for (const store of [new CookieStore({ secret: "a-secret-of-at-least-32-characters!!" }), slow]) {
      const app = express();
      app.use(sessions(store));
      app.get("/", (req, res) => {
        req.session.n = ((req.session.n as number) ?? 0) + 1;
        res.send(String(req.session.n));
      });
      const agent = request.agent(app);
      expect((await agent.get("/").timeout(5000)).text).toBe("1");
      expect((await agent.get("/").timeout(5000)).text).toBe("2");
    }

    for (const [name, proto] of Object.entries(prototypes)) {
      const after = descriptorsOf(proto);
      const then = before[name];
      expect({ name, keys: [...after.keys()].map(String) }).toEqual({ name, keys: [...then.keys()].map(String) });
      for (const [key, descriptor] of after) {
        const old = then.get(key) as PropertyDescriptor;
        expect({ name, key: String(key), same: descriptor.value === old.value && descriptor.get === old.get && descriptor.set === old.set }).toEqual({
          name,
          key: String(key),
          same: true,
        });
      }
    }
    expect((await rawAnswer(plainServer())).toString("latin1")).toBe(answerBefore.toString("latin1"));
  });

  it("a response whose session was never read keeps Node's own methods; one whose session was read gets its own wrappers (writeHead and end; write and flushHeaders too where the store saves with I/O)", async () => {
    const { sessions, MemoryStore } = jest.requireActual<typeof Package>("../lib");
    const app = express();
    app.use(sessions(new MemoryStore()));
    app.get("/untouched", (_req, res) => res.json({ own: ["writeHead", "write", "end", "flushHeaders"].filter((m) => Object.hasOwn(res, m)) }));
    app.get("/read", (req, res) => {
      void req.session.id;
      res.json({ own: ["writeHead", "write", "end", "flushHeaders"].filter((m) => Object.hasOwn(res, m)) });
    });
    expect((await request(app).get("/untouched").timeout(5000)).body).toEqual({ own: [] });
    expect((await request(app).get("/read").timeout(5000)).body).toEqual({ own: ["writeHead", "end"] });
  });

  it("res.headersSent answers as Node does while an asynchronous save holds the response", async () => {
    const { sessions, MemoryStore } = jest.requireActual<typeof Package>("../lib");
    const memory = new MemoryStore();
    let release: () => void = () => {};
    const slow: SessionStore = {
      async: true,
      load: async (ctx) => memory.load(ctx),
      dump: (session, ctx) => new Promise((resolve) => (release = () => resolve(memory.dump(session, ctx)))),
    };
    const seen: boolean[] = [];
    const app = express();
    app.use(sessions(slow));
    app.get("/", (req, res) => {
      req.session.n = 1;
      res.send("held");
      seen.push(res.headersSent); // nothing has been written yet
      setTimeout(() => release(), 5);
    });
    const res = await request(app).get("/").timeout(5000);
    expect(res.text).toBe("held");
    expect(res.headers["set-cookie"]).toHaveLength(1);
    expect(seen).toEqual([false]);
  });
});
