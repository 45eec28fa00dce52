// at-run harness: the main module of every bundle's Deno process.
//
// The runner writes one JSON line to stdin to start
// (`{nonce, mode, code, maxBytes, loadTimeoutMs, env: {names, values}, egress}`), then one
// line per call (`{id, export, args, ctx}`). Replies go to stdout as `<nonce> <json>`
// lines. The nonce, like everything this module uses, is captured before any bundle code
// runs and lives in this module's scope, which bundle code cannot reach: whatever a
// bundle prints or overwrites, it cannot forge a reply, read another process's input, or
// take over the runner's stdin; `Deno.exit` and `Deno.stdin` are locked before the bundle
// is imported. A process serves one bundle of one author, and nobody else.
//
// What this module gives the bundle in place of Deno's own:
// - `Deno.env` (and so `process.env`): the declared names and secrets from the start
//   line; the process itself runs with `--deny-env` and an environment the runner chose.
// - `fetch`: every request goes through the runner's egress forwarder, the only address
//   Deno lets this process reach, which checks the declared hosts and private networks
//   and follows no redirects (this module follows them, through the forwarder again).
// - `localStorage` and `caches`: off. Deno would keep them on disk, keyed by this
//   module's URL, which every bundle shares.
// - `Worker`: workers a call starts are terminated when no call is running any more.
// - `Deno.cwd()`, `Deno.execPath()`, `Deno.mainModule` and `process.cwd()`, `execPath`,
//   `argv`, `argv0`: neutral values, not the runner's paths on the host.
// - `ctx.request` of an endpoint: a web `Request` (method, URL, headers but ours, body).
// - `ctx.kv` (bundles that declare `kv`): get/set/delete/list, answered by the runner
//   over stdin (`{kvReply, ok, value|error}` lines) from this bundle's own store.
// - `console`: what a call prints goes to the runner as `{log: id, level, text, at}`
//   lines of that call (found through an AsyncLocalStorage, so concurrent calls keep
//   their own lines), bounded per line and per call; what is printed outside any call
//   (top-level code, a stray timer) goes as call 0. An uncaught error's stack is logged
//   with its call.
//
// The egress token never reaches a value or a function the bundle can touch: the
// headers sent to the forwarder are a null-prototype record (no iterator, no setter a
// bundle could patch) built in this module, and Deno's fetch reads it with its own
// primordials.

import { AsyncLocalStorage } from "node:async_hooks";

const TAG = Symbol.for("at-run");
const stdoutWriteSync = Deno.stdout.writeSync.bind(Deno.stdout);
const exit = Deno.exit.bind(Deno);
const parse = JSON.parse;
const stringify = JSON.stringify;
const encoder = new TextEncoder();
const encode = encoder.encode.bind(encoder);
const decoder = new TextDecoder();
const decode = decoder.decode.bind(decoder);
const stdin = Deno.stdin;
const readStdin = stdin.read.bind(stdin);
const readStdinSync = stdin.readSync.bind(stdin);
const ResponseClass = Response;
const RequestClass = Request;
const HeadersClass = Headers;
const URLClass = URL;
const MapClass = Map;
const SetClass = Set;
const uncurry = (fn) => Function.prototype.call.bind(fn);
const headersEntries = uncurry(Headers.prototype.entries);
const headersGet = uncurry(Headers.prototype.get);
const arrayFromIterable = Array.from;
const stringOf = String;
const toLower = uncurry(String.prototype.toLowerCase);
const setAdd = uncurry(Set.prototype.add);
const setValues = uncurry(Set.prototype.values);
const setClear = uncurry(Set.prototype.clear);
const arrayFrom = Array.from;
const TypeErrorClass = TypeError;
const NotCapable = Deno.errors.NotCapable;
const originalFetch = globalThis.fetch;
const WorkerClass = globalThis.Worker;
const terminateWorker = uncurry(WorkerClass.prototype.terminate);
const defineProperty = Object.defineProperty;
const freeze = Object.freeze;
const setTimer = setTimeout;
const clearTimer = clearTimeout;
const createObjectURL = URL.createObjectURL;
const BlobClass = Blob;
const inspect = Deno.inspect;
const now = Date.now;
const callContext = new AsyncLocalStorage();
const getStore = uncurry(AsyncLocalStorage.prototype.getStore);
const runIn = uncurry(AsyncLocalStorage.prototype.run);
const currentCall = () => getStore(callContext) ?? 0;
const decodeBase64 = atob;
const fromBase64 = (text) => {
  const binary = decodeBase64(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
};
const toBase64 = (bytes) => {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
  return btoa(binary);
};

for (const [name, message] of [
  ["exit", "Deno.exit is not allowed in a bundle: return from the handler instead"],
  ["stdin", "stdin is reserved for the runner; handlers get their input as arguments"],
]) {
  defineProperty(Deno, name, {
    get() {
      throw new Error(message);
    },
    configurable: false,
  });
}

let nonce = "";
let maxBytes = 1048576;

// Synchronous, whole-line writes: replies never interleave, and a small reply costs one
// system call instead of an async round trip through the event loop.
function send(message) {
  let line = stringify(message);
  if (line.length > maxBytes + 4096) {
    line = stringify({ id: message.id, ok: false, error: `the response is larger than ${maxBytes} bytes` });
  }
  const bytes = encode(`${nonce} ${line}\n`);
  let offset = 0;
  while (offset < bytes.length) offset += stdoutWriteSync(bytes.subarray(offset));
}

function describe(error) {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

// --- console ---------------------------------------------------------------------------

// The runner enforces the same bounds; these keep a chatty call from filling the pipe.
const LINE_CHARS = 4000;
const LINES_PER_CALL = 200;
const printed = new MapClass(); // call id -> lines sent

function log(level, args, id = currentCall()) {
  const count = (printed.get(id) ?? 0) + 1;
  printed.set(id, count);
  if (count > LINES_PER_CALL) return;
  let text = "";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    let part;
    try {
      part = typeof arg === "string" ? arg : inspect(arg, { depth: 4, colors: false, strAbbreviateSize: LINE_CHARS });
    } catch {
      part = "[uninspectable]";
    }
    text += i === 0 ? part : ` ${part}`;
    if (text.length > LINE_CHARS) break;
  }
  if (text.length > LINE_CHARS) text = `${text.slice(0, LINE_CHARS)}…`;
  send({ log: id, level, text, at: now() });
}

// Where in the bundle an error was thrown: frames of the bundle's blob URL read as
// `bundle.js`, and the harness's own frames are left out.
function stackOf(error) {
  if (!(error instanceof Error) || typeof error.stack !== "string") return describe(error);
  return error.stack
    .split("\n")
    .filter((line) => !line.includes("/harness-"))
    .map((line) => line.replace(/blob:null\/[0-9a-f-]+/g, "bundle.js"))
    .join("\n");
}

function installConsole() {
  const levels = { log: "log", info: "info", debug: "debug", warn: "warn", error: "error", trace: "error" };
  for (const name in levels) {
    const level = levels[name];
    defineProperty(console, name, { value: (...args) => log(level, args), writable: true, configurable: true });
  }
  globalThis.addEventListener("unhandledrejection", (event) => {
    log("error", [`Uncaught (in promise) ${stackOf(event.reason)}`]);
  });
  globalThis.addEventListener("error", (event) => {
    log("error", [`Uncaught ${stackOf(event.error)}`]);
  });
}

// --- what the bundle sees instead of Deno's own ----------------------------------------

// Reserved names (runtime settings such as NODE_OPTIONS, which Node's compatibility layer
// reads) are never available to a bundle: they read as unset. Other undeclared names are
// refused, with advice.
function installEnv({ names = [], values = {}, reserved = { names: [], prefixes: [], suffix: "_PROXY" } }) {
  const allowed = new SetClass(names);
  const vars = new MapClass(Object.entries(values));
  const reservedNames = new SetClass(reserved.names);
  const isReserved = (name) => {
    const upper = String(name).toUpperCase();
    return reservedNames.has(upper) || reserved.prefixes.some((p) => upper.startsWith(p)) || upper.endsWith(reserved.suffix);
  };
  const check = (name) => {
    if (!allowed.has(name)) {
      throw new NotCapable(`Requires env access to "${name}", which the bundle does not declare`);
    }
  };
  const env = freeze({
    get(name) {
      if (isReserved(name)) return undefined;
      check(name);
      return vars.get(name);
    },
    has(name) {
      if (isReserved(name)) return false;
      check(name);
      return vars.has(name);
    },
    set(name, value) {
      check(name);
      vars.set(name, String(value));
    },
    delete(name) {
      check(name);
      vars.delete(name);
    },
    toObject() {
      throw new NotCapable("Requires env access to all variables; read declared names one by one");
    },
  });
  defineProperty(Deno, "env", { value: env, writable: false, configurable: false });
}

// What the bundle sees of where it runs: nothing of the host's file system.
const BUNDLE_URL = "file:///bundle.js";
function installPlaces() {
  for (const [name, value] of [
    ["cwd", () => "/"],
    ["execPath", () => "/deno"],
  ]) {
    defineProperty(Deno, name, { value, writable: false, configurable: false });
  }
  defineProperty(Deno, "mainModule", { value: BUNDLE_URL, writable: false, configurable: false });
  // `process.execPath` reads `Deno.execPath()`; `process.argv0` is the runner's `arg0`.
  const process = globalThis.process;
  if (process) {
    defineProperty(process, "cwd", { value: () => "/", writable: false, configurable: false });
    defineProperty(process, "argv", { value: freeze(["/deno", "/bundle.js"]), writable: false, configurable: false });
    defineProperty(process, "mainModule", { value: undefined, writable: false, configurable: false });
  }
}

function installStorage() {
  for (const name of ["localStorage", "caches"]) {
    defineProperty(globalThis, name, {
      get() {
        throw new Error(
          `${name} is not available to at-run bundles: keep state in your PDS or an external service`,
        );
      },
      configurable: false,
    });
  }
}

// Workers started by calls; terminated when no call is running.
const workers = new SetClass();
function installWorkers() {
  class Worker extends WorkerClass {
    constructor(...args) {
      super(...args);
      setAdd(workers, this);
    }
  }
  defineProperty(globalThis, "Worker", { value: Worker, writable: true, configurable: true });
}
function stopWorkers() {
  for (const worker of arrayFrom(setValues(workers))) {
    try {
      terminateWorker(worker);
    } catch {
      // already gone
    }
  }
  setClear(workers);
}

const NULL_BODY = new SetClass([101, 103, 204, 205, 304]);
const REDIRECT = new SetClass([301, 302, 303, 307, 308]);

function installFetch(egress) {
  async function fetch(input, init) {
    const request = new RequestClass(input, init);
    let target = new URLClass(request.url);
    if (target.protocol !== "http:" && target.protocol !== "https:") return originalFetch(request);
    let method = request.method;
    let body = method === "GET" || method === "HEAD" ? undefined : new Uint8Array(await request.arrayBuffer());
    // The bundle's own headers, as plain data: nothing of ours is added to an object
    // whose methods the bundle could have replaced.
    const headers = { __proto__: null };
    for (const [name, value] of arrayFromIterable(headersEntries(request.headers))) {
      const key = toLower(stringOf(name));
      headers[key] = key in headers ? `${headers[key]}, ${value}` : stringOf(value);
    }
    const mode = request.redirect;
    for (let hops = 0; ; hops++) {
      const via = { __proto__: null };
      for (const key in headers) via[key] = headers[key];
      via["x-atrun-egress"] = egress.token;
      via["x-atrun-url"] = target.href;
      const response = await originalFetch(egress.url, {
        __proto__: null,
        method,
        headers: via,
        body,
        redirect: "manual",
        signal: request.signal,
      });
      const refused = headersGet(response.headers, "x-atrun-egress-error");
      if (refused) {
        const message = await response.text();
        if (refused === "denied" || refused === "private") throw new NotCapable(message);
        throw new TypeErrorClass(`fetch ${target.origin} failed: ${message}`);
      }
      const location = headersGet(response.headers, "location");
      if (!REDIRECT.has(response.status) || mode === "manual" || location === null) {
        return wrap(response, target, hops > 0);
      }
      await response.body?.cancel();
      if (mode === "error") throw new TypeErrorClass(`fetch ${target.href} was redirected, and redirect is "error"`);
      if (hops >= 20) throw new TypeErrorClass(`fetch ${request.url}: too many redirects`);
      const next = new URLClass(location, target);
      if (next.origin !== target.origin) delete headers.authorization;
      if (response.status === 303 ? method !== "HEAD" : (response.status <= 302 && method === "POST")) {
        method = "GET";
        body = undefined;
        for (const name of ["content-type", "content-length", "content-encoding", "content-language"]) delete headers[name];
      }
      target = next;
    }
  }
  function wrap(response, url, redirected) {
    const out = new ResponseClass(NULL_BODY.has(response.status) ? null : response.body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
    defineProperty(out, "url", { value: url.href });
    defineProperty(out, "redirected", { value: redirected });
    return out;
  }
  defineProperty(globalThis, "fetch", { value: fetch, writable: true, configurable: true, enumerable: true });
}

// --- the protocol ----------------------------------------------------------------------

// Calls being handled. While there are none, the process waits for the next line in a
// blocking read: Deno's async stdin read goes through a helper thread, which costs about
// 50 µs per call, and with no call in flight there is nothing for the event loop to do.
// (Timers a handler leaves behind wait for the next call; workers are stopped.)
let inFlight = 0;

// Reads into one reused buffer: a stream reader would allocate a fresh chunk per read.
async function* lines() {
  const chunk = new Uint8Array(65536);
  let buffer = "";
  let scanned = 0; // a multi-megabyte bundle arrives in many reads: scan each byte once
  for (;;) {
    // A call that needs no I/O finishes within a few microtask turns.
    for (let turn = 0; turn < 32 && inFlight > 0; turn++) await undefined;
    const count = inFlight === 0 ? readStdinSync(chunk) : await readStdin(chunk);
    if (count === null) return;
    buffer += decode(chunk.subarray(0, count), { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n", scanned)) >= 0) {
      yield buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      scanned = 0;
    }
    scanned = buffer.length;
  }
}

const exportsByName = new MapClass();

async function load(code) {
  const module = await import(createObjectURL(new BlobClass([code], { type: "application/javascript" })));
  const manifest = { name: null, sdkVersion: null, permissions: { net: [], env: [], kv: false }, exports: [] };
  for (const [name, value] of Object.entries(module)) {
    const kind = value && typeof value === "object" ? value[TAG] : undefined;
    if (kind === "manifest") {
      manifest.name = typeof value.name === "string" ? value.name : null;
      manifest.sdkVersion = typeof value.sdkVersion === "string" ? value.sdkVersion : null;
      const permissions = value.permissions ?? {};
      manifest.permissions = {
        net: Array.isArray(permissions.net) ? permissions.net.map(String) : [],
        env: Array.isArray(permissions.env) ? permissions.env.map(String) : [],
        kv: permissions.kv === true,
      };
    } else if (kind === "endpoint" || kind === "task" || kind === "job") {
      if (typeof value.handler !== "function") throw new Error(`export ${name} has no handler function`);
      exportsByName.set(name, { kind, handler: value.handler });
      const entry = { name, kind };
      for (const key of ["concurrency", "cacheTtl", "timeout"]) if (typeof value[key] === "number") entry[key] = value[key];
      if (typeof value.schedule === "string") entry.schedule = value.schedule;
      manifest.exports.push(entry);
    }
  }
  return manifest;
}

// A pending timer keeps the event loop alive, so a top-level await that never settles
// is reported as such instead of Deno exiting with "promise never resolved".
function loadWithin(code, ms) {
  let timer;
  const expired = new Promise((_, fail) => {
    timer = setTimer(
      () => fail(new Error(`the bundle's top-level code did not finish within ${ms} ms (a top-level await that never settles?)`)),
      ms,
    );
  });
  return Promise.race([load(code), expired]).finally(() => clearTimer(timer));
}

// --- ctx.kv ----------------------------------------------------------------------------

const kvWaiting = new MapClass(); // operation number -> { resolve, reject }
let kvNext = 1;
let kv = null;

function kvCall(op) {
  return new Promise((resolve, reject) => {
    const number = kvNext++;
    kvWaiting.set(number, { resolve, reject });
    send({ kv: number, op });
  });
}

function kvAnswer({ kvReply, ok, value, error }) {
  const waiting = kvWaiting.get(kvReply);
  if (!waiting) return;
  kvWaiting.delete(kvReply);
  if (ok) waiting.resolve(value);
  else waiting.reject(new Error(error));
}

function keyOf(key) {
  if (typeof key !== "string") throw new TypeErrorClass("ctx.kv keys are strings");
  return key;
}

function makeKv() {
  return freeze({
    get: async (key) => kvCall({ op: "get", key: keyOf(key) }),
    set: async (key, value, options = {}) => {
      const json = stringify(value);
      if (json === undefined) throw new TypeErrorClass("ctx.kv values are JSON: this one is not");
      const ttl = options?.ttl;
      return kvCall({ op: "set", key: keyOf(key), value: parse(json), ...(ttl === undefined ? {} : { ttl }) });
    },
    delete: async (key) => kvCall({ op: "delete", key: keyOf(key) }),
    list: async (options = {}) =>
      kvCall({ op: "list", prefix: options?.prefix, after: options?.after, limit: options?.limit }),
  });
}

// The endpoint's HTTP request, as the web `Request` handlers get in `ctx.request`.
function toRequest({ method, url, headers, body }) {
  return new RequestClass(url, { method, headers, body: body == null ? null : fromBase64(body) });
}

async function call({ id, export: name, args, ctx }) {
  const entry = exportsByName.get(name);
  if (!entry) return { id, ok: false, error: `no export named ${name}` };
  try {
    if (ctx && ctx.request) {
      // Built on first use: most handlers never look at it.
      const raw = ctx.request;
      let built = null;
      defineProperty(ctx, "request", {
        get: () => (built ??= toRequest(raw)),
        enumerable: true,
        configurable: true,
      });
    }
    if (ctx && kv) ctx.kv = kv;
    const value = entry.kind === "job" ? await entry.handler(ctx) : await entry.handler(args ?? {}, ctx);
    if (value instanceof ResponseClass) {
      const body = new Uint8Array(await value.arrayBuffer());
      if (body.length > maxBytes) return { id, ok: false, error: `the response is larger than ${maxBytes} bytes` };
      return { id, ok: true, kind: "response", status: value.status, headers: [...value.headers.entries()], body: toBase64(body) };
    }
    if (typeof value === "bigint" || typeof value === "function" || typeof value === "symbol") {
      return { id, ok: false, error: `the handler returned a ${typeof value}, which is not JSON` };
    }
    return { id, ok: true, kind: "json", value: value === undefined ? null : value };
  } catch (error) {
    log("error", [`Uncaught ${stackOf(error)}`], id);
    return { id, ok: false, error: describe(error) };
  }
}

async function reply(message) {
  inFlight++;
  try {
    const result = await runIn(callContext, message.id, () => call(message));
    const count = printed.get(message.id) ?? 0;
    if (count > LINES_PER_CALL) send({ log: message.id, dropped: count - LINES_PER_CALL });
    try {
      send(result);
    } catch (error) {
      // The value could not be serialised (cycles, BigInt deep inside, a getter that throws).
      send({ id: message.id, ok: false, error: `the handler's result is not JSON: ${describe(error)}` });
    }
  } finally {
    printed.delete(message.id);
    printed.delete(0);
    inFlight--;
    if (inFlight === 0) stopWorkers();
  }
}

let started = false;
for await (const line of lines()) {
  if (!started) {
    started = true;
    const init = parse(line);
    nonce = init.nonce;
    maxBytes = init.maxBytes;
    installEnv(init.env ?? {});
    installPlaces();
    installStorage();
    installWorkers();
    installConsole();
    if (init.kv) kv = makeKv();
    if (init.egress) installFetch(init.egress);
    try {
      send({ ready: true, manifest: await loadWithin(init.code, init.loadTimeoutMs) });
    } catch (error) {
      send({ ready: false, error: describe(error) });
      exit(1);
    }
    stopWorkers();
    if (init.mode === "extract") exit(0);
  } else {
    const message = parse(line);
    if (message.kvReply !== undefined) kvAnswer(message);
    else reply(message);
  }
}
exit(0);
