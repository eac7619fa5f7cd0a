/**
 * The machine's PostgreSQL and MariaDB, for the express-session store suites. Each suite gets
 * a database of its own, with a unique name, created before it and dropped after it, so runs
 * never see each other's sessions. Servers: PostgreSQL on 127.0.0.1:5432 as `postgres` with
 * trust auth, MariaDB on 127.0.0.1:3306 as `root` without a password (PGHOST, PGPORT, PGUSER and
 * MARIADB_HOST, MARIADB_PORT, MARIADB_USER, MARIADB_PASSWORD override them).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import mysql from "mysql2/promise";
import { Client, Pool } from "pg";
import type { Requirement } from "./servers";

/** Bound on connecting and on each query, so a stalled server fails the test instead of hanging it. */
const TIMEOUT_MS = 5000;

const PG = { host: process.env.PGHOST ?? "127.0.0.1", port: Number(process.env.PGPORT ?? 5432), user: process.env.PGUSER ?? "postgres" };
const MARIA = {
  host: process.env.MARIADB_HOST ?? "127.0.0.1",
  port: Number(process.env.MARIADB_PORT ?? 3306),
  user: process.env.MARIADB_USER ?? "root",
  password: process.env.MARIADB_PASSWORD ?? "",
};

export const POSTGRES: Requirement = {
  available: listening(PG.host, PG.port),
  missing: `PostgreSQL is not listening on ${PG.host}:${PG.port}: start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or install it (apt-get install postgresql)`,
};

export const MARIADB: Requirement = {
  available: listening(MARIA.host, MARIA.port),
  missing: `MariaDB is not listening on ${MARIA.host}:${MARIA.port}: start it (start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd) or install it (apt-get install mariadb-server)`,
};

/** A database of this run's own. */
export interface Database<P> {
  name: string;
  /** A connection pool on it. */
  pool: P;
  /** Closes the pool and drops the database. */
  drop(): Promise<void>;
}

/** A fresh PostgreSQL database holding connect-pg-simple's `session` table. */
export async function createPostgresDatabase(): Promise<Database<Pool>> {
  const name = uniqueName();
  await asPostgresAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const pool = new Pool({ ...PG, database: name, connectionTimeoutMillis: TIMEOUT_MS, query_timeout: TIMEOUT_MS });
  pool.on("error", () => undefined); // idle clients of a dropped database
  // Created here rather than by connect-pg-simple's createTableIfMissing, which two stores on one
  // database would race to do.
  await pool.query(readFileSync(require.resolve("connect-pg-simple/table.sql"), "utf8"));
  return {
    name,
    pool,
    drop: async () => {
      await pool.end();
      await asPostgresAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** A fresh MariaDB database (express-mysql-session creates its `sessions` table). */
export async function createMariaDbDatabase(): Promise<Database<mysql.Pool>> {
  const name = uniqueName();
  const admin = await mysql.createConnection({ ...MARIA, connectTimeout: TIMEOUT_MS });
  try {
    await admin.query({ sql: `CREATE DATABASE ${name}`, timeout: TIMEOUT_MS });
  } finally {
    await admin.end();
  }
  const pool = mysql.createPool({ ...MARIA, database: name, connectTimeout: TIMEOUT_MS, connectionLimit: 4 });
  return {
    name,
    pool,
    drop: async () => {
      await pool.end();
      const dropper = await mysql.createConnection({ ...MARIA, connectTimeout: TIMEOUT_MS });
      try {
        await dropper.query({ sql: `DROP DATABASE IF EXISTS ${name}`, timeout: TIMEOUT_MS });
      } finally {
        await dropper.end();
      }
    },
  };
}

async function asPostgresAdmin(run: (admin: Client) => Promise<unknown>): Promise<void> {
  const admin = new Client({ ...PG, database: "postgres", connectionTimeoutMillis: TIMEOUT_MS, query_timeout: TIMEOUT_MS });
  await admin.connect();
  try {
    await run(admin);
  } finally {
    await admin.end();
  }
}

/** sessionbox_test_<pid>_<random>: unique per run, and a valid unquoted identifier in both servers. */
function uniqueName(): string {
  return `sessionbox_test_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** Whether something accepts TCP connections at host:port. Synchronous (describe() callbacks are), so probed from a child process. */
function listening(host: string, port: number): boolean {
  const probe = `require("net").connect(${port}, ${JSON.stringify(host)}).on("connect", () => process.exit(0)).on("error", () => process.exit(1)).setTimeout(2000, () => process.exit(1))`;
  return spawnSync(process.execPath, ["-e", probe], { timeout: 5000 }).status === 0;
}
