/**
 * SPEC §9: socket.io's documented session pattern, `io.engine.use(sessionMiddleware)` then
 * `req.session.reload()` / `req.session.save()` in an event, on every store, compared in the
 * same test with express-session (the control). Server-side stores save in the event; the
 * cookie store cannot (there is no response to carry a cookie), and says so to the callback.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { Server } from "socket.io";
import { io as connect, type Socket } from "socket.io-client";
import type { SessionObject } from "../lib";
import { Browser } from "./helpers/apps";
import { CONTROL, forEachStore, type StoreUnderTest } from "./helpers/every-store";

type Ack = { user?: unknown; count?: number; error?: string };

/** Signs in over HTTP, then counts twice over socket.io; reads the count back over HTTP. */
async function countOverSocket(store: StoreUnderTest): Promise<unknown> {
  const middleware = store.middleware();
  const app = express();
  app.use(middleware);
  app.post("/login", (req, res) => {
    req.session.user = "ann";
    res.send("ok");
  });
  app.get("/count", (req, res) => res.json({ count: req.session.count ?? null }));
  const server = createServer(app);
  const io = new Server(server);
  io.engine.use(middleware);
  io.on("connection", (socket) => {
    const req = socket.request as unknown as { session: SessionObject };
    socket.on("count", (ack: (answer: Ack) => void) => {
      req.session.reload((err) => {
        if (err) return ack({ error: err.message });
        req.session.count = ((req.session.count as number | undefined) ?? 0) + 1;
        req.session.save((err2) => ack(err2 ? { error: err2.message } : { user: req.session.user, count: req.session.count as number }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let socket: Socket | undefined;
  try {
    const browser = new Browser(url);
    await browser.post("/login");
    socket = connect(url, { extraHeaders: { cookie: browser.jar.header() }, reconnection: false, timeout: 5000 });
    await new Promise<void>((resolve, reject) => {
      socket!.once("connect", () => resolve());
      socket!.once("connect_error", reject);
    });
    const emit = () => (socket as Socket).timeout(5000).emitWithAck("count") as Promise<Ack>;
    const first = await emit();
    const second = await emit();
    return { first, second, overHttp: (await browser.get("/count")).body };
  } finally {
    socket?.disconnect();
    io.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

forEachStore((store) => {
  if (store.inCookie) {
    it("reads the session in an event; save() reports that a cookie session cannot be saved outside a response", async () => {
      const ours = (await countOverSocket(store)) as { first: Ack; second: Ack; overHttp: unknown };
      expect(ours.first.error).toMatch(/session change on GET \/socket\.io\/.* was not saved: the store needs a new cookie, and the headers had already been sent/);
      expect(ours.second.error).toEqual(ours.first.error);
      expect(ours.overHttp).toEqual({ count: null });
    });
    return;
  }
  it("reloads and saves the session in events, as under express-session", async () => {
    const [ours, control] = await Promise.all([countOverSocket(store), countOverSocket(CONTROL)]);
    expect(control).toEqual({ first: { user: "ann", count: 1 }, second: { user: "ann", count: 2 }, overHttp: { count: 2 } });
    expect(ours).toEqual(control);
  });
});
