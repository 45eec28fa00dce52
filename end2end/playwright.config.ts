// Playwright drives Debian's Chromium (never a downloaded browser) against a Streamhut
// server that scripts/test.sh has just built. The server runs on a fresh data directory,
// so every run starts from an empty index.
import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const port = Number(process.env.STREAMHUT_E2E_PORT ?? 3789);
const baseURL = `http://127.0.0.1:${port}`;
const root = resolve(__dirname, "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");

export default defineConfig({
  testDir: "./tests",
  outputDir: "./test-results",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  timeout: 30_000,
  reporter: [["list"], ["html", { outputFolder: "playwright-report", open: "never" }]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: {
    command: process.env.STREAMHUT_BIN ?? join(targetDir, "debug", "streamhut"),
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: {
      STREAMHUT_LISTEN_ADDR: `127.0.0.1:${port}`,
      STREAMHUT_DATA_DIR:
        process.env.STREAMHUT_E2E_DATA_DIR ?? mkdtempSync(join(tmpdir(), "streamhut-e2e-")),
      STREAMHUT_SITE_ROOT: join(targetDir, "site"),
      ATRUN_HOME: join(process.env.STREAMHUT_E2E_DATA_DIR ?? tmpdir(), "at-run"),
      // Tests reach only 127.0.0.1: no default creators, no public APIs.
      STREAMHUT_DEFAULT_CREATORS: "",
      BSKY_PUBLIC_API_URL: "",
      VOD_ORIGIN_URL: "http://127.0.0.1:9",
      // Only problems reach the test output.
      RUST_LOG: process.env.RUST_LOG ?? "warn",
    },
  },
});
