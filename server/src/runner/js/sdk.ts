// The at-run SDK: what bundle authors import as "at-run".
//
//   import { manifest, endpoint, task, job } from "at-run";
//   export const bundle = manifest({ name: "my-api", permissions: { net: ["api.example.com"], env: ["LOG_LEVEL"] } });
//   export const hello = endpoint({ handler: async (args, ctx) => ({ hi: args.name }) });
//   export const slow = task({ concurrency: 2, cacheTtl: 86400, handler: async (args) => ... });
//   export const nightly = job({ schedule: "*/10 * * * *", handler: async (ctx) => ... });
//
// Each export's name is its endpoint name; any HTTP method reaches it. Its arguments are
// a JSON object body or else the query string; `ctx.request` is the whole request.
// Handlers return JSON-serialisable data (sent as 200 JSON) or a web `Response` (any
// status, content type and headers, except those that act on the site itself). Code that needs the network, env or secrets must run
// inside handlers: runners read the manifest with no permissions at all.

/** Version of this SDK, recorded in each bundle's manifest. */
export const SDK_VERSION = "0.2.0";

const TAG = Symbol.for("at-run");

/** What a bundle may use when its handlers run. */
export interface Permissions {
  /** Host names (optionally `host:port`) the bundle may reach. */
  net?: string[];
  /** Environment variables it may read, besides its secrets (granted automatically). */
  env?: string[];
  /** Whether it keeps lasting state in `ctx.kv` (stored by the runner, per author and
   * bundle, within the runner's quota). */
  kv?: boolean;
}

/** One entry of `ctx.kv.list()`. */
export interface KvEntry {
  key: string;
  value: unknown;
}

/** `ctx.kv`: the bundle's own lasting key-value store. Values are JSON. */
export interface Kv {
  /** The value of `key`, or null. */
  get(key: string): Promise<unknown>;
  /** Sets `key` to `value`; with `ttl` (seconds) it expires. Fails when the bundle's
   * quota is full or the value is over the size limit. */
  set(key: string, value: unknown, options?: { ttl?: number }): Promise<void>;
  /** Deletes `key`; whether it was there. */
  delete(key: string): Promise<boolean>;
  /** Entries whose key starts with `prefix`, in key order: at most `limit` (default
   * 100, at most 1000), after the key `after` (the last of the previous page). */
  list(options?: { prefix?: string; after?: string; limit?: number }): Promise<KvEntry[]>;
}

/** What a handler gets besides its arguments. */
export interface Context {
  /** The bundle's author (DID), name and version, and the export being run. */
  bundle: { did: string; name: string; version: string };
  export: string;
  /** For endpoints: the HTTP request that called it (method, URL with path and query,
   * headers except the site's cookies and `Authorization`, the body through `text()`,
   * `json()`, `formData()`, `arrayBuffer()`). Tasks and jobs have none. */
  request?: Request;
  /** For endpoints: the DID of the caller, verified, when the request carries an AT
   * Protocol service auth token for this runner bound to `dev.atrun.call.{bundle}.{export}`
   * (`com.atproto.server.getServiceAuth` with `aud` = the runner's DID, `lxm` = that);
   * null otherwise. */
  caller?: string | null;
  /** For bundles that declare `permissions: { kv: true }`: their lasting store. */
  kv?: Kv;
  /** For jobs: when the previous run started (ISO 8601), if there was one. */
  lastRunAt?: string;
}

/** A handler's arguments: the query string's parameters (strings, or arrays of them when
 * repeated) or a JSON object body. Annotate them in the handler to type them. */
export type Args = Record<string, unknown>;
export type Handler<A = Args> = (args: A, ctx: Context) => unknown | Promise<unknown>;

export interface Manifest {
  name: string;
  permissions?: Permissions;
}

export interface EndpointOptions<A = Args> {
  handler: Handler<A>;
}

export interface TaskOptions<A = Args> {
  handler: Handler<A>;
  /** Most executions at once (default 1). */
  concurrency?: number;
  /** Seconds a result is reused for the same arguments (default 3600). */
  cacheTtl?: number;
  /** Seconds one attempt may run (default: the runner's call timeout). */
  timeout?: number;
}

export interface JobOptions {
  /** A cron expression (UTC) such as "*\/10 * * * *", or "every 15m". */
  schedule: string;
  handler: (ctx: Context) => unknown | Promise<unknown>;
}

/** Declares the bundle: its name and the permissions its handlers need. */
export function manifest(options: Manifest) {
  return { [TAG]: "manifest", sdkVersion: SDK_VERSION, ...options };
}

/** A synchronous endpoint: the caller waits for its result. */
export function endpoint<A = Args>(options: EndpointOptions<A>) {
  return { [TAG]: "endpoint", ...options };
}

/** A task: deduplicated by arguments, cached, run with bounded concurrency; callers
 * poll for the result (202 while running, 200 when complete). */
export function task<A = Args>(options: TaskOptions<A>) {
  return { [TAG]: "task", ...options };
}

/** A job: runs on a schedule, for bundles the runner's operator installed. */
export function job(options: JobOptions) {
  return { [TAG]: "job", ...options };
}
