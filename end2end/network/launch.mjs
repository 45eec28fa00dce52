#!/usr/bin/env node
// A real, local AT Protocol network for tests and demos: a PLC directory (@did-plc/server,
// in-memory database) and a PDS (@atproto/pds) in one Node process, on free loopback ports.
//
// Prints one line `READY {json}` with pdsUrl, plcUrl, adminPassword and handleDomain once
// both answer, then serves until SIGTERM/SIGINT or until its stdin closes (so a test
// process that dies, however it dies, takes the network with it). Everything it writes
// to disk lives in a temporary directory removed on exit.
//
//   node end2end/network/launch.mjs        (or: npm --prefix end2end run network)

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

// The PDS logs through pino to stdout; keep stdout for our READY line.
process.env.LOG_ENABLED ??= "false";

const { PDS, envToCfg, envToSecrets } = await import("@atproto/pds");
const plcModule = await import("@did-plc/server");
const { PlcServer, Database: PlcDatabase } = plcModule.default ?? plcModule;

/** A free TCP port on the loopback interface. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Makes an express app's `listen(port)` bind the loopback interface only. */
function loopbackOnly(app) {
  const listen = app.listen.bind(app);
  app.listen = (port, ...rest) => listen(port, "127.0.0.1", ...rest);
}

const dataDir = mkdtempSync(join(tmpdir(), "streamhut-atnet-"));
let plc;
let pds;
let stopping = false;

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  try {
    await pds?.destroy();
    await plc?.destroy();
  } catch (err) {
    console.error("network: error while stopping:", err);
    code = code || 1;
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(code);
  }
}

process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.on("close", () => stop(0));
process.stdin.resume();

try {
  const plcPort = await freePort();
  plc = PlcServer.create({ db: PlcDatabase.mock(), port: plcPort });
  loopbackOnly(plc.app);
  await plc.start();
  const plcUrl = `http://localhost:${plcPort}`;

  const pdsPort = await freePort();
  const adminPassword = randomBytes(12).toString("hex");
  const env = {
    // The hostname must be exactly `localhost` for an http:// public URL; the port is baked
    // into every DID document the PDS writes.
    hostname: "localhost",
    port: pdsPort,
    devMode: true,
    version: "0.0.0-test",
    dataDirectory: dataDir,
    blobstoreDiskLocation: join(dataDir, "blobs"),
    didPlcUrl: plcUrl,
    serviceHandleDomains: [".test"],
    inviteRequired: false,
    crawlers: [],
    jwtSecret: randomBytes(16).toString("hex"),
    adminPassword,
    // Any 32 random bytes are a valid secp256k1 private key (but with negligible odds).
    plcRotationKeyK256PrivateKeyHex: randomBytes(32).toString("hex"),
    rateLimitsEnabled: false,
  };
  pds = await PDS.create(envToCfg(env), envToSecrets(env));
  loopbackOnly(pds.app);
  await pds.start();

  const ready = {
    pdsUrl: `http://localhost:${pdsPort}`,
    plcUrl,
    adminPassword,
    handleDomain: ".test",
  };
  process.stdout.write(`READY ${JSON.stringify(ready)}\n`);
} catch (err) {
  console.error("network: failed to start:", err);
  await stop(1);
}
