// The example app with sessions in Redis: the cookie carries only the signed session id.
// Start several copies on different ports against the same Redis: they share the sessions.
//
//   REDIS_URL=redis://127.0.0.1:6379 npm run example:redis      then open the address it prints
//   REDIS_URL=... SESSION_SECRET=... PORT=8080 npm run example:redis
//
// Sign in (the session is regenerated: a new id, the old key deleted), count, sign out (destroyed:
// the key is deleted). The only difference from examples/cookie-app.mjs is the sessions(...) line.
import { randomBytes } from "node:crypto";
import express from "express";
// The package imports itself by name (Node resolves it through package.json "exports").
import { sessions, SessionConfigError } from "sessionbox";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";

if (!process.env.REDIS_URL) {
  console.error("REDIS_URL is not set: start the example with the address of a Redis server, e.g.\n  REDIS_URL=redis://127.0.0.1:6379 npm run example:redis");
  process.exit(1);
}

let secret = process.env.SESSION_SECRET;
if (!secret) {
  if (process.env.NODE_ENV === "production") {
    console.error("SESSION_SECRET is not set. In production the secret must come from the environment (at least 32 characters).");
    process.exit(1);
  }
  // A random secret is fine while developing, but then each run (and each copy) signs ids differently:
  // set SESSION_SECRET to share sessions between copies or across restarts.
  secret = randomBytes(32).toString("base64url");
  console.log("SESSION_SECRET is not set: using a random secret for this run (development only; sessions are not shared with other runs).");
}

let middleware;
try {
  // Plain configuration: the same line could come from a config file or environment variables.
  middleware = sessions({ store: "redis", url: process.env.REDIS_URL, secret, prefix: "example:" });
} catch (err) {
  if (!(err instanceof SessionConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(middleware);

app.get("/", (req, res) => {
  const { userId, count = 0 } = req.session;
  const who = userId
    ? `<p>Signed in as <b>${escape(userId)}</b>.</p><form method="post" action="/logout"><button>Sign out</button></form>`
    : `<p>Not signed in. <a href="/login">Sign in</a></p>`;
  res.send(
    page(
      "Home",
      `${who}
      <p>Count: <b id="count">${count}</b></p>
      <form method="post" action="/count"><button>Count +1</button></form>
      <p><small>${
        userId || count
          ? `Session id: <code>${req.session.id}</code>, kept in Redis under <code>example:${req.session.id}</code> (a new one on sign-in and on sign-out)`
          : "No session saved yet: an empty session sets no cookie and writes nothing to Redis."
      }</small></p>
      <p><small>Served by the copy on port ${port}.</small></p>`,
    ),
  );
});

app.get("/login", (req, res) => {
  res.send(loginPage());
});

app.post("/login", async (req, res) => {
  const name = typeof req.body?.name === "string" ? req.body.name.trim() : "";
  if (name === "" || name.length > 64) {
    res.status(400).send(loginPage("Enter a name of 1 to 64 characters."));
    return;
  }
  // A new id on sign-in: a session id planted before sign-in (session fixation) is worthless.
  await req.session.regenerate({ keep: ["count"] });
  req.session.userId = name;
  res.redirect(303, "/");
});

app.post("/count", (req, res) => {
  req.session.count = (req.session.count ?? 0) + 1;
  res.redirect(303, "/");
});

app.post("/logout", (req, res) => {
  req.session.destroy();
  res.redirect(303, "/");
});

// Redis stalled or down: the store fails within its timeout with a 503 (err.status).
app.use((err, req, res, _next) => {
  const status = err.status ?? 500;
  if (status >= 500) console.error(`${req.method} ${req.url}: ${err.message}`);
  res.status(status).send(page("Try again", status === 503 ? "<p>Sessions are unavailable right now; please try again in a moment.</p>" : "<p>Something went wrong.</p>"));
});

const server = app.listen(port, host, () => {
  const { address, port: actual } = server.address();
  const shown = address.includes(":") ? `[${address}]` : address;
  console.log(`Example app (RedisStore) listening on http://${shown}:${actual}`);
});
server.on("error", (err) => {
  if (err.code === "EADDRINUSE") console.error(`Port ${port} is taken: start with another, e.g. PORT=3001 npm run example:redis`);
  else console.error(err.message);
  process.exit(1);
});
// The store created its own Redis client from the url: close it too, so the process can exit.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(() => middleware.store.close().then(() => process.exit(0))));
}

function loginPage(error = "") {
  return page(
    "Sign in",
    `${error ? `<p role="alert">${escape(error)}</p>` : ""}
    <form method="post" action="/login">
      <label>Name <input name="name" maxlength="64" autofocus required></label>
      <button>Sign in</button>
    </form>
    <p><a href="/">Back</a></p>`,
  );
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title} · sessionbox example</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
