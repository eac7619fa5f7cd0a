import { sign, unsign } from "cookie-signature";
import request from "supertest";
import { CookieStore, MemoryStore } from "../lib";
import {
  cookiesByName,
  fakeClock,
  Jar,
  openEncrypted,
  readSigned,
  SECRET,
  SECRET_2,
  SECRET_3,
  sessionApp,
  setCookies,
  useServers,
} from "./helpers/session-cookies";

const start = useServers();
const OLD = SECRET_2;
const OLDER = SECRET_3;
const NEW = SECRET;

afterEach(() => jest.restoreAllMocks());

/** Logs in with a store that only knows `secret`; returns the browser's jar and the session id. */
async function loginWith(secret: string, encrypt: boolean) {
  const server = await start(sessionApp(new CookieStore({ secret, encrypt })));
  const res = await request(server).post("/write").send({ user: "ann" });
  return { jar: new Jar().take(res), id: res.body.id as string };
}

/** The plaintext of a sealed value, if `secret` opens it. */
function openWith(value: string, secret: string, encrypt: boolean): string | undefined {
  if (encrypt) return openEncrypted(value, secret, "session");
  return unsign(`session=${value}`, secret) === false ? undefined : readSigned(value);
}

describe.each([true, false])("CookieStore secret rotation (encrypt: %p)", (encrypt) => {
  it("the first secret seals", async () => {
    const server = await start(sessionApp(new CookieStore({ secret: [NEW, OLD], encrypt })));
    const res = await request(server).post("/write").send({ user: "ann" });
    const value = cookiesByName(res).session.value;
    expect(openWith(value, NEW, encrypt)).toContain('"user":"ann"');
    expect(openWith(value, OLD, encrypt)).toBeUndefined();
  });

  it.each([
    ["second", [NEW, OLD]],
    ["third", [NEW, OLDER, OLD]],
  ])("a cookie sealed with the %s secret is still read", async (_, secrets) => {
    const before = await loginWith(OLD, encrypt);
    const server = await start(sessionApp(new CookieStore({ secret: secrets, encrypt })));
    const res = await request(server).get("/read").set("Cookie", before.jar.header());
    expect(res.body).toEqual({ id: before.id, user: "ann" });
  });

  it("a cookie read with an older secret is re-issued under the first, even when unchanged", async () => {
    const clock = fakeClock();
    const before = await loginWith(OLD, encrypt);
    const [created] = JSON.parse(openWith(before.jar.get("session") as string, OLD, encrypt) as string);
    clock.advance(1000); // well within touchAfter (60 s): an unchanged session would not be re-issued
    const rotating = await start(sessionApp(new CookieStore({ secret: [NEW, OLD], encrypt })));
    const res = await request(rotating).get("/read").set("Cookie", before.jar.header());
    expect(setCookies(res)).toHaveLength(1);
    const reissued = cookiesByName(res).session.value;
    const [createdAfter, touched, data] = JSON.parse(openWith(reissued, NEW, encrypt) as string);
    expect(data).toEqual({ id: before.id, user: "ann" });
    expect(createdAfter).toBe(created); // rotation does not extend the absolute lifetime
    expect(touched).toBe(clock.now);

    // The re-issued cookie opens with a store that knows only the first secret.
    const newOnly = await start(sessionApp(new CookieStore({ secret: NEW, encrypt })));
    const next = await request(newOnly).get("/read").set("Cookie", `session=${reissued}`);
    expect(next.body).toEqual({ id: before.id, user: "ann" });
  });

  it("a cookie already under the first secret is not re-issued needlessly", async () => {
    const before = await loginWith(NEW, encrypt);
    const server = await start(sessionApp(new CookieStore({ secret: [NEW, OLD], encrypt })));
    const res = await request(server).get("/read").set("Cookie", before.jar.header());
    expect(res.body.user).toBe("ann");
    expect(setCookies(res)).toEqual([]);
  });

  it("a cookie sealed with a secret that is no longer listed gives an empty session", async () => {
    const before = await loginWith(OLDER, encrypt);
    const server = await start(sessionApp(new CookieStore({ secret: [NEW, OLD], encrypt })));
    const res = await request(server).get("/read").set("Cookie", before.jar.header());
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: expect.any(String) });
    expect(res.body.id).not.toBe(before.id);
  });
});

describe("MemoryStore secret rotation (signed id cookie)", () => {
  it("an id signed with an older secret is accepted and re-signed under the first", async () => {
    const server = await start(sessionApp(new MemoryStore({ secret: [NEW, OLD] })));
    const login = await request(server).post("/write").send({ user: "ann" });
    const id = login.body.id as string;
    expect(cookiesByName(login).session.value).toBe(sign(id, NEW));
    // The browser still holds the id as signed before the rotation:
    const res = await request(server).get("/read").set("Cookie", `session=${sign(id, OLD)}`);
    expect(res.body).toEqual({ id, user: "ann" });
    expect(cookiesByName(res).session.value).toBe(sign(id, NEW));
  });

  it("an id signed with a secret that is no longer listed gives a new empty session", async () => {
    const store = new MemoryStore({ secret: [NEW, OLD] });
    const server = await start(sessionApp(store));
    const login = await request(server).post("/write").send({ user: "ann" });
    const id = login.body.id as string;
    const res = await request(server).get("/read").set("Cookie", `session=${sign(id, OLDER)}`);
    expect(res.body).toEqual({ id: expect.any(String) });
    expect(res.body.id).not.toBe(id);
  });
});
