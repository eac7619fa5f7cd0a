/**
 * SPEC §9: passport 0.7 with passport-local signs in and out on every store, leaving the session
 * in the same state as under express-session (the control, in the same test): the data set before
 * and after login, with keepSessionInfo false and true, and a new session id at login and logout.
 */
import express from "express";
import passport from "passport";
import { Strategy as LocalStrategy } from "passport-local";
import { Browser, closeServers, serveForTest } from "./helpers/apps";
import { CONTROL, forEachStore, type StoreUnderTest } from "./helpers/every-store";

afterEach(closeServers);

interface User {
  id: number;
  name: string;
}
const USERS: User[] = [{ id: 1, name: "ann" }];

function passportApp(store: StoreUnderTest, keepSessionInfo: boolean): express.Express {
  const auth = new passport.Passport();
  auth.use(new LocalStrategy((username, password, done) => done(null, password === "secret" ? USERS.find((u) => u.name === username) ?? false : false)));
  auth.serializeUser((user, done) => done(null, (user as User).id));
  auth.deserializeUser((id: number, done) => done(null, USERS.find((u) => u.id === id) ?? false));

  const app = express();
  app.use(express.urlencoded({ extended: false }));
  app.use(store.middleware());
  app.use(auth.session());
  const data = (req: express.Request) => {
    const s = req.session as unknown as Record<string, unknown>;
    return Object.fromEntries(Object.keys(s).filter((k) => k !== "id" && k !== "cookie").map((k) => [k, s[k]]));
  };
  app.post("/cart", (req, res) => {
    req.session.cart = [7];
    res.json({ sessionID: req.sessionID });
  });
  app.post("/login", auth.authenticate("local", { keepSessionInfo, failureMessage: false }), (req, res) => {
    req.session.afterLogin = true;
    res.json({ user: (req.user as User).name, sessionID: req.sessionID });
  });
  app.get("/me", (req, res) => res.json({ user: (req.user as User | undefined)?.name ?? null, data: data(req), sessionID: req.sessionID }));
  app.post("/logout", (req, res, next) => {
    req.logout({ keepSessionInfo }, (err) => (err ? next(err) : res.json({ user: req.user ?? null, data: data(req), sessionID: req.sessionID })));
  });
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => res.status(500).json({ error: err.message }));
  return app;
}

/** Signs in and out as a user would; what the user sees at each step (ids as "changed or not"). */
async function signInAndOut(store: StoreUnderTest, keepSessionInfo: boolean): Promise<unknown> {
  const { url } = await serveForTest(passportApp(store, keepSessionInfo));
  const browser = new Browser(url);
  const wrong = await browser.post("/login", (t) => t.type("form").send({ username: "ann", password: "wrong" }));
  const cart = await browser.post("/cart");
  const login = await browser.post("/login", (t) => t.type("form").send({ username: "ann", password: "secret" }));
  const me = await browser.get("/me");
  const logout = await browser.post("/logout");
  const after = await browser.get("/me");
  return {
    wrongPassword: wrong.status,
    login: { status: login.status, user: login.body.user, newId: login.body.sessionID !== cart.body.sessionID },
    me: { user: me.body.user, data: me.body.data, sameId: me.body.sessionID === login.body.sessionID },
    logout: { status: logout.status, user: logout.body.user, data: logout.body.data, newId: logout.body.sessionID !== login.body.sessionID },
    after: { user: after.body.user, data: after.body.data },
  };
}

describe.each([false, true])("passport 0.7 + passport-local, keepSessionInfo: %p", (keepSessionInfo) => {
  forEachStore((store) => {
    if (store.control) {
      it("the control (express-session) signs in and out", async () => {
        expect(await signInAndOut(CONTROL, keepSessionInfo)).toEqual({
          wrongPassword: 401,
          login: { status: 200, user: "ann", newId: true },
          me: { user: "ann", data: keepSessionInfo ? { cart: [7], passport: { user: 1 }, afterLogin: true } : { passport: { user: 1 }, afterLogin: true }, sameId: true },
          logout: { status: 200, user: null, data: keepSessionInfo ? { cart: [7], passport: {}, afterLogin: true } : {}, newId: true },
          after: { user: null, data: keepSessionInfo ? { cart: [7], passport: {}, afterLogin: true } : {} },
        });
      });
      return;
    }
    it("signs in and out as under express-session: the same users, data and id changes", async () => {
      const [ours, control] = await Promise.all([signInAndOut(store, keepSessionInfo), signInAndOut(CONTROL, keepSessionInfo)]);
      expect(ours).toEqual(control);
    });
  });
});
