/**
 * compression wraps res.write/res.end/res.writeHead on the response too: mounted before or after
 * the session middleware, with the session read before or after compression's wrappers are
 * installed, a compressed response still carries the session cookie and the change is saved.
 * Compared with express-session (the control) in the same test.
 */
import compression from "compression";
import express from "express";
import { Browser, closeServers, serveForTest } from "./helpers/apps";
import { CONTROL, forEachStore, type Middleware, type StoreUnderTest } from "./helpers/every-store";

afterEach(closeServers);

const BIG = "session data compressed ".repeat(400);

type Order = "compression first" | "session first, read before compression";

function app(middleware: Middleware, order: Order): express.Express {
  const a = express();
  if (order === "compression first") {
    a.use(compression({ threshold: 0 }));
    a.use(middleware);
  } else {
    a.use(middleware);
    a.use((req, _res, next) => {
      void req.session.id; // the session's hook is on the response before compression's wrappers
      next();
    });
    a.use(compression({ threshold: 0 }));
  }
  a.get("/stream", (req, res) => {
    req.session.n = ((req.session.n as number | undefined) ?? 0) + 1;
    res.type("text");
    res.write(BIG);
    res.write(BIG);
    res.end(String(req.session.n));
  });
  a.get("/send", (req, res) => {
    req.session.n = ((req.session.n as number | undefined) ?? 0) + 1;
    res.send(BIG + String(req.session.n));
  });
  return a;
}

async function run(store: StoreUnderTest, order: Order): Promise<unknown> {
  const { url } = await serveForTest(app(store.middleware(), order));
  const browser = new Browser(url);
  const streamed = await browser.get("/stream", (t) => t.set("Accept-Encoding", "gzip"));
  const sent = await browser.get("/send", (t) => t.set("Accept-Encoding", "gzip"));
  return {
    streamed: { status: streamed.status, encoding: streamed.headers["content-encoding"], text: streamed.text === `${BIG}${BIG}1` },
    sent: { status: sent.status, encoding: sent.headers["content-encoding"], text: sent.text === `${BIG}2` },
  };
}

describe.each<Order>(["compression first", "session first, read before compression"])("%s", (order) => {
  forEachStore((store) => {
    it("a compressed response, streamed or sent at once, carries the session and saves the change", async () => {
      const [ours, control] = await Promise.all([run(store, order), run(CONTROL, order)]);
      expect(control).toEqual({ streamed: { status: 200, encoding: "gzip", text: true }, sent: { status: 200, encoding: "gzip", text: true } });
      expect(ours).toEqual(control);
    });
  });
});
