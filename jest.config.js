/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  roots: ["<rootDir>/__tests__"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", diagnostics: { warnOnly: false } }] },
  collectCoverageFrom: ["lib/**/*.ts"],
  coverageReporters: ["text-summary", "text"],
  coverageThreshold: { global: { lines: 95, branches: 95 } },
  testTimeout: 30000,
};
