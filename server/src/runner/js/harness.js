// at-run harness: the main module of every bundle's Deno process.
//
// The runner writes one JSON line to stdin to start (`{nonce, mode, code, limits}`), then
// one line per call (`{id, export, args, ctx}`). The bundle runs inside a Web Worker, in
// a separate realm: it cannot reach this module's variables or overwrite its globals.
// Replies are written to stdout as `<nonce> <json>` lines; the nonce is read before any
// bundle code runs and stays in this module, so bundle output on stdout cannot be taken
// for a reply. Permissions are the process's: exactly what the manifest declares.

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const stdoutWrite = Deno.stdout.write.bind(Deno.stdout);
const exit = Deno.exit.bind(Deno);

let nonce = "";
let writing = Promise.resolve();

function send(message) {
  const bytes = encoder.encode(`${nonce} ${JSON.stringify(message)}\n`);
  writing = writing.then(async () => {
    let offset = 0;
    while (offset < bytes.length) offset += await stdoutWrite(bytes.subarray(offset));
  });
  return writing;
}

async function* lines() {
  const reader = Deno.stdin.readable.getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
    }
  }
}

const WORKER = `
const TAG = Symbol.for("at-run");

// The process and its stdin belong to the runner: a bundle may not end the one or read
// the other. Locked before bundle code runs, and not configurable afterwards.
for (const [name, message] of [
  ["exit", "Deno.exit is not allowed in a bundle: return from the handler instead"],
  ["stdin", "stdin is reserved for the runner; handlers get their input as arguments"],
]) {
  Object.defineProperty(Deno, name, {
    get() { throw new Error(message); },
    configurable: false,
  });
}
let exportsByName = new Map();
let maxBytes = 1048576;

function describe(error) {
  if (error instanceof Error) return error.name + ": " + error.message;
  return String(error);
}

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
  return btoa(binary);
}

async function load(url) {
  const module = await import(url);
  const manifest = { name: null, sdkVersion: null, permissions: { net: [], env: [] }, exports: [] };
  for (const [name, value] of Object.entries(module)) {
    const kind = value && typeof value === "object" ? value[TAG] : undefined;
    if (kind === "manifest") {
      manifest.name = typeof value.name === "string" ? value.name : null;
      manifest.sdkVersion = typeof value.sdkVersion === "string" ? value.sdkVersion : null;
      const permissions = value.permissions ?? {};
      manifest.permissions = {
        net: Array.isArray(permissions.net) ? permissions.net.map(String) : [],
        env: Array.isArray(permissions.env) ? permissions.env.map(String) : [],
      };
    } else if (kind === "endpoint" || kind === "task" || kind === "job") {
      if (typeof value.handler !== "function") throw new Error("export " + name + " has no handler function");
      exportsByName.set(name, value);
      const entry = { name, kind };
      for (const key of ["concurrency", "cacheTtl", "timeout"]) if (typeof value[key] === "number") entry[key] = value[key];
      if (typeof value.schedule === "string") entry.schedule = value.schedule;
      manifest.exports.push(entry);
    }
  }
  return manifest;
}

async function call({ id, export: name, args, ctx }) {
  const entry = exportsByName.get(name);
  if (!entry) return { id, ok: false, error: "no export named " + name };
  try {
    const value = entry[TAG] === "job" ? await entry.handler(ctx) : await entry.handler(args ?? {}, ctx);
    if (value instanceof Response) {
      const body = new Uint8Array(await value.arrayBuffer());
      if (body.length > maxBytes) return { id, ok: false, error: "the response is larger than " + maxBytes + " bytes" };
      return { id, ok: true, kind: "response", status: value.status, headers: [...value.headers.entries()], body: toBase64(body) };
    }
    const json = JSON.stringify(value === undefined ? null : value);
    if (json === undefined) return { id, ok: false, error: "the handler returned something that is not JSON" };
    if (json.length > maxBytes) return { id, ok: false, error: "the response is larger than " + maxBytes + " bytes" };
    return { id, ok: true, kind: "json", json };
  } catch (error) {
    return { id, ok: false, error: describe(error) };
  }
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "load") {
    maxBytes = message.maxBytes;
    try {
      self.postMessage({ type: "loaded", manifest: await load(message.url) });
    } catch (error) {
      self.postMessage({ type: "load-error", error: describe(error) });
    }
  } else if (message.type === "call") {
    self.postMessage({ type: "result", result: await call(message) });
  }
};
`;

function start(init) {
  const bundleUrl = URL.createObjectURL(new Blob([init.code], { type: "application/javascript" }));
  const workerUrl = URL.createObjectURL(new Blob([WORKER], { type: "application/javascript" }));
  const worker = new Worker(workerUrl, { type: "module" });
  worker.onmessage = async (event) => {
    const message = event.data;
    if (message.type === "loaded") {
      await send({ ready: true, manifest: message.manifest });
      if (init.mode === "extract") {
        await writing;
        exit(0);
      }
    } else if (message.type === "load-error") {
      await send({ ready: false, error: message.error });
      await writing;
      exit(1);
    } else if (message.type === "result") {
      await send(message.result);
    }
  };
  worker.onerror = async (event) => {
    event.preventDefault();
    await send({ fatal: `the bundle crashed: ${event.message}` });
    await writing;
    exit(1);
  };
  worker.postMessage({ type: "load", url: bundleUrl, maxBytes: init.maxBytes });
  return worker;
}

let worker = null;
for await (const line of lines()) {
  if (worker === null) {
    const init = JSON.parse(line);
    nonce = init.nonce;
    worker = start(init);
  } else {
    const call = JSON.parse(line);
    worker.postMessage({ type: "call", ...call });
  }
}
exit(0);
