// The admin dashboard in a real browser, against the real local AT Protocol network: an
// admin signs in with handle and app password (checked by their PDS), registers a creator
// whose videos are on that PDS, and sees the video count appear.
//
// This spec starts its own network and its own Streamhut (the shared web server knows no
// PDS and no admin), so it is independent of the other specs.
import { test, expect } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const root = resolve(__dirname, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const binary = process.env.STREAMHUT_BIN ?? join(targetDir, "debug", "streamhut");

type Network = { pdsUrl: string; plcUrl: string };
type Account = { did: string; handle: string; password: string; accessJwt: string };

let network: ChildProcess | undefined;
let server: ChildProcess | undefined;
let dataDir = "";
let baseURL = "";
let admin: Account;
let creator: Account;

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.on("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

function launchNetwork(): Promise<Network> {
  network = spawn("node", [join(root, "end2end", "network", "launch.mjs")], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((done, fail) => {
    const lines = createInterface({ input: network!.stdout! });
    lines.on("line", (line) => {
      if (line.startsWith("READY ")) done(JSON.parse(line.slice(6)));
    });
    network!.on("exit", (code) => fail(new Error(`the network exited with ${code}`)));
  });
}

async function xrpc(net: Network, method: string, body: unknown, token?: string) {
  const response = await fetch(`${net.pdsUrl}/xrpc/${method}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function createAccount(net: Network, name: string): Promise<Account> {
  const handle = `${name}${process.pid}.test`;
  const password = `pw-${name}-${process.pid}`;
  const created = await xrpc(net, "com.atproto.server.createAccount", {
    handle,
    email: `${name}${process.pid}@example.com`,
    password,
  });
  return { did: created.did, handle, password, accessJwt: created.accessJwt };
}

async function waitForHealth(url: string) {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never became healthy`);
}

test.beforeAll(async () => {
  test.setTimeout(90_000);
  const net = await launchNetwork();
  admin = await createAccount(net, "admin");
  creator = await createAccount(net, "maker");
  for (const [n, title] of ["Opening keynote", "Lightning talks", "Closing panel"].entries()) {
    await xrpc(
      net,
      "com.atproto.repo.createRecord",
      {
        repo: creator.did,
        collection: "place.stream.video",
        record: {
          $type: "place.stream.video",
          title,
          durationMs: 60_000 * (n + 1),
          createdAt: new Date(Date.UTC(2026, 0, n + 1)).toISOString(),
        },
      },
      creator.accessJwt,
    );
  }

  const port = await freePort();
  baseURL = `http://127.0.0.1:${port}`;
  dataDir = mkdtempSync(join(tmpdir(), "streamhut-admin-e2e-"));
  server = spawn(binary, [], {
    stdio: ["ignore", "inherit", "inherit"],
    env: {
      ...process.env,
      STREAMHUT_LISTEN_ADDR: `127.0.0.1:${port}`,
      STREAMHUT_DATA_DIR: dataDir,
      STREAMHUT_SITE_ROOT: join(targetDir, "site"),
      ATRUN_HOME: join(dataDir, "at-run"),
      PLC_URL: net.plcUrl,
      HANDLE_RESOLVER_URL: net.pdsUrl,
      ALLOW_PRIVATE_NETWORK: "true",
      ADMIN_DIDS: admin.did,
      BSKY_PUBLIC_API_URL: "",
      STREAMHUT_DEFAULT_CREATORS: "",
      VOD_ORIGIN_URL: "http://127.0.0.1:9",
      RUST_LOG: process.env.RUST_LOG ?? "warn",
    },
  });
  await waitForHealth(baseURL);
});

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGTERM");
  });
}

test.afterAll(async () => {
  // The server first: it follows the network's firehose and would log its going away.
  await stop(server);
  await stop(network);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("an admin signs in, registers a creator and sees their video count", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));

  await page.goto(`${baseURL}/admin`);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await page.getByLabel("Handle").fill(admin.handle);
  await page.getByLabel("App password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page).toHaveURL(`${baseURL}/admin`);
  await expect(page.getByText(`Signed in as ${admin.did}`)).toBeVisible();
  await page.getByPlaceholder("handle or DID").fill(creator.handle);
  await page.getByRole("button", { name: "Register", exact: true }).click();
  await expect(page.getByRole("status")).toContainText(`Registered ${creator.handle}`);

  // The sync runs in the background; the count shows once it is done.
  const row = page.locator(`tr[data-did="${creator.did}"]`);
  await expect(async () => {
    await page.reload();
    await expect(row.locator("td.videos")).toHaveText("3", { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(row).toContainText(creator.handle);
  await page.screenshot({ path: "test-results/admin-dashboard.png", fullPage: true });

  // The videos are on the home page too.
  await page.goto(`${baseURL}/`);
  await expect(page.getByText("Lightning talks")).toBeVisible();

  // Signing out returns to the sign-in form.
  await page.goto(`${baseURL}/admin`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("a wrong app password is refused with a clear message", async ({ page }) => {
  await page.goto(`${baseURL}/admin`);
  await page.getByLabel("Handle").fill(admin.handle);
  await page.getByLabel("App password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("wrong");
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
});

test("the dashboard works with JavaScript turned off", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${baseURL}/admin`);
  await page.getByLabel("Handle").fill(admin.handle);
  await page.getByLabel("App password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByText(`Signed in as ${admin.did}`)).toBeVisible();
  await page.getByRole("button", { name: "Sync all" }).click();
  await expect(page.getByRole("status")).toContainText("Syncing");
  await expect(page.getByRole("heading", { name: "Last job runs" })).toBeVisible();
  await context.close();
});
