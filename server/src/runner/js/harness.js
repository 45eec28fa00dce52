// at-run harness: the main module of every bundle's Deno process.
//
// The runner writes one JSON line to stdin to start (`{nonce, mode, code, maxBytes}`),
// then one line per call (`{id, export, args, ctx}`). Replies go to stdout as
// `<nonce> <json>` lines. The nonce, like everything this module uses, is captured
// before any bundle code runs and lives in this module's scope, which bundle code cannot
// reach: whatever a bundle prints or overwrites, it cannot forge a reply, read another
// process's input, or take over the runner's stdin; `Deno.exit` and `Deno.stdin` are
// locked before the bundle is imported. Permissions are the process's own: exactly what
// the manifest declares. (A bundle can break its own process, which the runner then
// replaces; it shares that process with nobody.)

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
const createObjectURL = URL.createObjectURL;
const BlobClass = Blob;
const toBase64 = (bytes) => {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode(...bytes.subarray(i, i + 32768));
  return btoa(binary);
};

for (const [name, message] of [
  ["exit", "Deno.exit is not allowed in a bundle: return from the handler instead"],
  ["stdin", "stdin is reserved for the runner; handlers get their input as arguments"],
]) {
  Object.defineProperty(Deno, name, {
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

// Calls being handled. While there are none, the process waits for the next line in a
// blocking read: Deno's async stdin read goes through a helper thread, which costs about
// 50 µs per call, and with no call in flight there is nothing for the event loop to do.
// (Work a handler leaves running after it returns waits for the next call, as in other
// serverless runtimes.)
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

const exportsByName = new Map();

async function load(code) {
  const module = await import(createObjectURL(new BlobClass([code], { type: "application/javascript" })));
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

async function call({ id, export: name, args, ctx }) {
  const entry = exportsByName.get(name);
  if (!entry) return { id, ok: false, error: `no export named ${name}` };
  try {
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
    return { id, ok: false, error: describe(error) };
  }
}

async function reply(message) {
  inFlight++;
  try {
    const result = await call(message);
    try {
      send(result);
    } catch (error) {
      // The value could not be serialised (cycles, BigInt deep inside, a getter that throws).
      send({ id: message.id, ok: false, error: `the handler's result is not JSON: ${describe(error)}` });
    }
  } finally {
    inFlight--;
  }
}

let started = false;
for await (const line of lines()) {
  if (!started) {
    started = true;
    const init = parse(line);
    nonce = init.nonce;
    maxBytes = init.maxBytes;
    try {
      send({ ready: true, manifest: await load(init.code) });
    } catch (error) {
      send({ ready: false, error: describe(error) });
      exit(1);
    }
    if (init.mode === "extract") exit(0);
  } else {
    reply(parse(line));
  }
}
exit(0);
