// The example app: sign in with passport-local, "remember me", a private page with notes, sign out.
//
//   npm run example                                  CookieStore: no server needed (PORT, default 3000)
//   REDIS_URL=redis://127.0.0.1:6379 npm run example   the same app on RedisStore
//   SESSION_SECRET=... sets the secret (a random one is used while developing)
//   SESSION_COOKIE=__Host-session names the cookie (default "session")
//
// Demo user: ann / correct horse (passwords are kept as scrypt hashes).
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import express from "express";
import passport from "passport";
import { Strategy as LocalStrategy } from "passport-local";
// The package imports itself by name (Node resolves it through package.json "exports").
import { sessions, SessionConfigError, SessionTooLargeError } from "sessionbox";

const DAY = 86_400_000;
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";

let secret = process.env.SESSION_SECRET;
if (!secret) {
  if (process.env.NODE_ENV === "production") {
    console.error("SESSION_SECRET is not set. In production the secret must come from the environment (at least 32 characters).");
    process.exit(1);
  }
  secret = randomBytes(32).toString("base64url"); // fine while developing: sessions end when the app restarts
  console.log("SESSION_SECRET is not set: using a random secret for this run (development only).");
}

// Swapped by configuration: the routes below do not change. A remembered session lives 30 days
// from its last use, so the absolute limit must be longer than that.
// A `__Host-` name makes the cookie Secure: browsers keep it over HTTPS and on http://localhost only.
const config = { secret, maxAge: DAY, absoluteTimeout: 90 * DAY, ...(process.env.SESSION_COOKIE && { name: process.env.SESSION_COOKIE }) };
let middleware;
try {
  middleware = sessions(process.env.REDIS_URL ? { store: "redis", url: process.env.REDIS_URL, ...config } : { store: "cookie", ...config });
} catch (err) {
  if (!(err instanceof SessionConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const hash = (password, salt) => scryptSync(password, salt, 32);
const salt = randomBytes(16);
const users = [{ id: 1, name: "ann", passwordHash: hash("correct horse", salt) }];

passport.use(
  new LocalStrategy((username, password, done) => {
    const user = users.find((u) => u.name === username);
    done(null, user && timingSafeEqual(hash(password, salt), user.passwordHash) ? user : false);
  }),
);
passport.serializeUser((user, done) => done(null, user.id));
passport.deserializeUser((id, done) => done(null, users.find((u) => u.id === id) ?? false));

const app = express();
app.use(express.urlencoded({ extended: false }));
app.use(middleware);
app.use(passport.session());

app.get("/", (req, res) => {
  const who = req.user ? `Signed in as <b>${escape(req.user.name)}</b>. <a href="/private">Your page</a>` : `<a href="/login">Sign in</a>`;
  res.send(page("Home", `<p>${who}</p>`));
});

app.get("/login", (req, res) => {
  const failed = req.query.failed ? `<p role="alert">Wrong name or password.</p>` : "";
  res.send(
    page(
      "Sign in",
      `${failed}<form method="post" action="/login">
        <p><label>Name <input name="username" autocomplete="username" required></label></p>
        <p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
        <p><label><input type="checkbox" name="remember" value="1"> Remember me for 30 days</label></p>
        <button>Sign in</button>
      </form><p><small>Demo: ann / correct horse</small></p>`,
    ),
  );
});

// passport regenerates the session on sign-in (a session id planted before it is worthless).
app.post("/login", passport.authenticate("local", { failureRedirect: "/login?failed=1" }), (req, res) => {
  // Remembered: 30 days from the last visit. Otherwise the cookie ends with the browser.
  if (req.body.remember) req.session.cookie.maxAge = 30 * DAY;
  else req.session.cookie.expires = null;
  res.redirect(303, "/private");
});

app.get("/private", (req, res) => {
  if (!req.user) return res.redirect(303, "/login");
  req.session.visits = (req.session.visits ?? 0) + 1;
  const lasts = req.session.cookie.maxAge === null ? "until you close the browser" : `${Math.round(req.session.cookie.maxAge / DAY)} days from now`;
  res.send(
    page(
      "Your page",
      `<p>Hello <b id="user">${escape(req.user.name)}</b>. Visits: <b id="visits">${req.session.visits}</b>.</p>
      <p>Your session lasts <span id="lasts">${lasts}</span>.</p>
      <ul id="notes" style="overflow-wrap: anywhere">${(req.session.notes ?? []).map((note) => `<li>${escape(note)}</li>`).join("")}</ul>
      <form method="post" action="/notes"><p><label>Note <textarea name="note" required></textarea></label> <button>Add note</button></p></form>
      <form method="post" action="/notes/clear"><button>Clear notes</button></form>
      <form method="post" action="/logout"><button>Sign out</button></form>`,
    ),
  );
});

// Notes live in the session, so they make it grow: on CookieStore a session over 4 KB is split over
// several cookies (session, session.1, ...), up to maxSize; clearing the notes leaves one again.
app.post("/notes", (req, res) => {
  if (req.user) req.session.notes = [...(req.session.notes ?? []), String(req.body.note ?? "")];
  res.redirect(303, "/private");
});

app.post("/notes/clear", (req, res) => {
  if (req.user) delete req.session.notes;
  res.redirect(303, "/private");
});

app.post("/logout", (req, res, next) => {
  req.logout((err) => (err ? next(err) : res.redirect(303, "/")));
});

// A session past CookieStore's maxSize is refused, never cut short: the last note was not kept.
app.use((err, req, res, next) => {
  if (!(err instanceof SessionTooLargeError)) return next(err);
  res.status(413).send(page("Too many notes", `<p>That note does not fit in your session: it was not kept. <a href="/private">Back</a></p>`));
});

const server = app.listen(port, host, () => {
  const { address, port: actual } = server.address();
  const store = process.env.REDIS_URL ? "RedisStore" : "CookieStore";
  console.log(`Example app (${store}) listening on http://${address.includes(":") ? `[${address}]` : address}:${actual}`);
});
server.on("error", (err) => {
  console.error(err.code === "EADDRINUSE" ? `Port ${port} is taken: start with another, e.g. PORT=3001 npm run example` : err.message);
  process.exit(1);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => server.close(async () => (await middleware.store.close?.(), process.exit(0))));
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title} · sessionbox example</title></head><body><h1>${title}</h1>${body}</body></html>`;
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
