/**
 * Suites that need a real server (Redis, PostgreSQL, MariaDB). Without one, the suite is
 * skipped with a loud notice locally, and fails under `CI=true`: CI must run every suite.
 */

/** A server a suite needs: whether it is there, and what to do when it is not. */
export interface Requirement {
  available: boolean;
  /** What is missing and how to get it, e.g. "redis-server is not on the PATH: apt-get install redis-server". */
  missing: string;
}

/** `describe`, run only when every requirement is met (see above). */
export function describeNeeding(requirements: Requirement[], name: string, fn: () => void): void {
  const missing = requirements.filter((requirement) => !requirement.available).map((requirement) => requirement.missing);
  if (missing.length === 0) return describe(name, fn);
  const message = `${missing.join("; ")} (needed to run "${name}")`;
  if (process.env.CI === "true") {
    describe(name, () => {
      beforeAll(() => {
        throw new Error(`${message}; CI=true, so these suites must run`);
      });
      it("runs against real servers", () => undefined);
    });
    return;
  }
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  describe.skip(name, fn);
}
