import { defineConfig } from "@playwright/test";

// Drives the system Chromium (Debian's /usr/bin/chromium); Playwright never
// downloads a browser here. scripts/test starts the server and sets COVER_BASE_URL.
export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL: process.env.COVER_BASE_URL ?? "http://127.0.0.1:3000",
    // Every control carries a `data-test` hook; specs select by it.
    testIdAttribute: "data-test",
    browserName: "chromium",
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
    trace: "off",
  },
});
