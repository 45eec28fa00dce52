// What the specs that need real parts share: the local AT Protocol network, the local
// video origin, accounts and records on the PDS, a Streamhut server pointed at them, and the
// checks every page must pass (no console errors, axe, no sideways overflow).
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

import AxeBuilder from "@axe-core/playwright";
import { expect, type Page } from "@playwright/test";

const root = resolve(__dirname, "..", "..");
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const binary = process.env.STREAMHUT_BIN ?? join(targetDir, "debug", "streamhut");

export type Network = { pdsUrl: string; plcUrl: string };
export type Account = { did: string; handle: string; password: string; accessJwt: string };

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
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

/** Starts a Node script that prints `READY {json}`; resolves with that JSON. */
function launch<T>(script: string): { child: ChildProcess; ready: Promise<T> } {
  const child = spawn("node", [join(root, "end2end", "network", script)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const ready = new Promise<T>((done, fail) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      if (line.startsWith("READY ")) done(JSON.parse(line.slice(6)));
    });
    child.on("exit", (code) => fail(new Error(`${script} exited with ${code}`)));
  });
  return { child, ready };
}

/** A child process's end, after SIGTERM. */
export function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((done) => {
    child.once("exit", () => done());
    child.kill("SIGTERM");
  });
}

export async function xrpc(net: Network, method: string, body: unknown, token?: string) {
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

export async function createAccount(net: Network, name: string): Promise<Account> {
  const handle = `${name}${process.pid}.test`;
  const password = `pw-${name}-${process.pid}`;
  const created = await xrpc(net, "com.atproto.server.createAccount", {
    handle,
    email: `${name}${process.pid}@example.com`,
    password,
  });
  return { did: created.did, handle, password, accessJwt: created.accessJwt };
}

/** Writes `record` to `account`'s `collection` under `rkey`. */
export async function putRecord(net: Network, account: Account, collection: string, rkey: string, record: unknown) {
  return xrpc(
    net,
    "com.atproto.repo.putRecord",
    { repo: account.did, collection, rkey, record },
    account.accessJwt,
  );
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

/** Real parts for one spec file: network, origin and server; `close` stops them all. */
export class Bed {
  net!: Network;
  originUrl = "";
  baseURL = "";
  adminToken = `e2e-admin-token-${process.pid}-0123456789`;
  private children: ChildProcess[] = [];
  private dataDir = "";

  /** Starts the network, and the origin if asked. */
  async startNetwork(withOrigin = false) {
    const network = launch<Network>("launch.mjs");
    this.children.push(network.child);
    if (withOrigin) {
      const origin = launch<{ url: string }>("origin.mjs");
      this.children.push(origin.child);
      this.originUrl = (await origin.ready).url;
    }
    this.net = await network.ready;
  }

  /** Starts Streamhut against them, with `env` on top of the test settings. */
  async startServer(env: Record<string, string> = {}) {
    const port = await freePort();
    this.baseURL = `http://127.0.0.1:${port}`;
    this.dataDir = mkdtempSync(join(tmpdir(), "streamhut-e2e-"));
    const server = spawn(binary, [], {
      stdio: ["ignore", "inherit", "inherit"],
      env: {
        ...process.env,
        STREAMHUT_LISTEN_ADDR: `127.0.0.1:${port}`,
        STREAMHUT_PUBLIC_URL: this.baseURL,
        STREAMHUT_DATA_DIR: this.dataDir,
        STREAMHUT_SITE_ROOT: join(targetDir, "site"),
        ATRUN_HOME: join(this.dataDir, "at-run"),
        PLC_URL: this.net.plcUrl,
        HANDLE_RESOLVER_URL: this.net.pdsUrl,
        ALLOW_PRIVATE_NETWORK: "true",
        ADMIN_TOKEN: this.adminToken,
        BSKY_PUBLIC_API_URL: "",
        STREAMHUT_DEFAULT_CREATORS: "",
        VOD_ORIGIN_URL: this.originUrl || "http://127.0.0.1:9",
        RUST_LOG: process.env.RUST_LOG ?? "warn",
        ...env,
      },
    });
    // The server first on the way out: it follows the network's firehose.
    this.children.unshift(server);
    await waitForHealth(this.baseURL);
  }

  /** Registers `account` with the admin token and waits until their videos are indexed. */
  async register(account: Account, videos: number) {
    const response = await fetch(`${this.baseURL}/api/appview/registerCreator`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${this.adminToken}` },
      body: JSON.stringify({ actor: account.did }),
    });
    if (!response.ok) throw new Error(`registerCreator: ${response.status} ${await response.text()}`);
    for (let attempt = 0; attempt < 200; attempt++) {
      const list = await (await fetch(`${this.baseURL}/api/appview/listVideos?creator=${account.did}`)).json();
      if ((list.videos ?? []).length >= videos) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${account.handle}'s videos were never indexed`);
  }

  async close() {
    for (const child of this.children) await stop(child);
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Fails the test on any console error or uncaught exception (hydration warnings included). */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    // A 404 (or 410) page is meant to be one: Chromium reports the document's own status.
    if (/status of 4(04|10)\b/.test(message.text()) && message.location().url === page.url()) return;
    if (message.type() === "error" || message.text().toLowerCase().includes("hydration")) {
      errors.push(`${message.type()}: ${message.text()}`);
    }
  });
  return errors;
}

/** Fails the test on any serious or critical accessibility violation axe finds. */
export async function axe(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  const serious = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`)).toEqual([]);
}

/** How far the page reaches past the viewport's right edge, in CSS pixels. */
export async function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}
