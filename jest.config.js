/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  // lib/ is a root too, so a file no test imports still shows (uncovered) in the coverage report.
  roots: ["<rootDir>/__tests__", "<rootDir>/lib"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }] },
  // `npm test` runs `jest --coverage`, so the threshold below is enforced there; a single file
  // runs without it: `npx jest __tests__/x.test.ts` (or with --coverage=false).
  collectCoverageFrom: ["lib/**/*.ts"],
  coverageReporters: ["text-summary", "text"],
  coverageThreshold: { global: { lines: 95, branches: 95 } },
  testTimeout: 30000,
};
