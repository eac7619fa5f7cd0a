// The app `bench/faults.mjs` drives: Express with RedisStore, in a process of its own so that
// the heap it reports is the app's alone. Forked with --expose-gc; REDIS_URL and
// FAULTS_TIMEOUT (the store's timeout, ms) come from the environment.
//
//   POST /append?key=K&value=V   sets session[K] = V and answers { id } once it is saved
//                                (the middleware answers 200 only after the save); an error
//                                answers its status (503 when Redis is down or stalled)
//
// IPC: it sends { ready, port } when it listens; { heap } answers a { heap: true } message
// with the heap used after two full collections.
import { createRequire } from "node:module";
import http from "node:http";
import { DIST } from "./common.mjs";

const require = createRequire(import.meta.url);
const express = require("express");
const { RedisStore, sessions } = require(DIST);

const store = new RedisStore({
  url: process.env.REDIS_URL,
  secret: "faults-secret-faults-secret-0123456789",
  timeout: Number(process.env.FAULTS_TIMEOUT ?? 2000),
});
const app = express();
app.use(sessions(store));
// One field per value: RedisStore writes only changed fields, so each save is one HSET of one
// small field, however many values the session already holds.
app.post("/append", (req, res) => {
  req.session[String(req.query.key)] = String(req.query.value);
  res.json({ id: req.session.id });
});
app.use((err, req, res, next) => {
  if (res.headersSent) return next(err);
  res.status(err.status ?? 500).send(err.code ?? "error");
});

const server = http.createServer(app);
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => process.send({ ready: true, port: server.address().port }));

process.on("message", (msg) => {
  if (msg?.heap) {
    global.gc();
    global.gc();
    process.send({ heap: process.memoryUsage().heapUsed });
  }
});
process.on("disconnect", async () => {
  server.closeAllConnections();
  server.close();
  await store.close().catch(() => undefined);
  process.exit(0);
});
