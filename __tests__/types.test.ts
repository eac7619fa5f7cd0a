/**
 * Types are tested as code: ts-jest type-checks this file, so each line that must compile
 * does, and each `@ts-expect-error` line must fail to compile (an unused one is an error).
 */
import express from "express";
import { CookieStore, MemoryStore, RedisStore, Session, sessions, type SessionMiddleware } from "../lib";

const secret = "s".repeat(32);

/** SPEC §1, verbatim: configuration straight from environment variables type-checks. */
function specExample(): express.Express {
  const app = express();
  app.use(sessions(new CookieStore({ secret: process.env.SESSION_SECRET! })));
  app.use(sessions({ store: "redis", url: process.env.REDIS_URL, secret: process.env.SESSION_SECRET }));
  app.get("/", (req, res) => {
    req.session.views = ((req.session.views as number) ?? 0) + 1;
    res.send(`views: ${req.session.views}`);
  });
  return app;
}

describe("the public types", () => {
  it("accept the SPEC §1 example, with secrets and urls taken from the environment", () => {
    // Compiling is the test; running it would need the variables, and checks them at start-up.
    expect(typeof specExample).toBe("function");
    expect(() => sessions({ store: "cookie", secret: undefined })).toThrow(/needs a secret/);
  });

  it("type the resolved store by what was passed", () => {
    const fromInstance: SessionMiddleware<CookieStore> = sessions(new CookieStore({ secret }));
    const fromConfig: SessionMiddleware<MemoryStore> = sessions({ store: "memory" });
    expect(fromInstance.store).toBeInstanceOf(CookieStore);
    expect(fromConfig.store).toBeInstanceOf(MemoryStore);
    // @ts-expect-error a cookie-store middleware does not hold a RedisStore
    const wrong: SessionMiddleware<RedisStore> = sessions(new CookieStore({ secret }));
    expect(wrong.store).not.toBeInstanceOf(RedisStore);
  });

  it("make the id read-only and the methods not assignable as data", () => {
    const session = Session.empty();
    // @ts-expect-error id is read-only (at run time the assignment is ignored)
    session.id = "other";
    expect(session.id).not.toBe("other");
    // @ts-expect-error a method is not data
    session.save = 1;
    expect(typeof session.save).toBe("function");
    // @ts-expect-error an unknown store name is a type error (and a SessionConfigError at run time)
    expect(() => sessions({ store: "mongo", secret })).toThrow(/unknown store "mongo"/);
  });
});
