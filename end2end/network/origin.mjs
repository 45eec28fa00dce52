#!/usr/bin/env node
// A local origin shaped like today's stream.place node, for the browser tests and the
// Rust tests of what stream.place serves (started the same way by both):
//
// - `getVideoPlaylist?uri=` answers the master playlist stream.place writes: version 6,
//   the audio as separate AAC renditions (`EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"`,
//   NAME the codec, root-relative URIs with the query keys sorted), a subtitles group
//   `cc`, and one video variant referring to both. Each master request mints a new
//   session id (`sid`), as stream.place does per viewer; a media playlist asked for
//   without one is answered with a 302 adding a fresh one, an unknown one with
//   `400 InvalidSession`.
// - media playlists are CMAF: `EXT-X-MAP` a blob of its own (no byte range), segments
//   byte ranges into one content blob, all at `getVideoBlob?did=&sid=&cid=<cid>.m4s`,
//   which honours single Range requests.
// - `captions=<id>` answers the subtitles playlist: one WebVTT segment per video segment
//   at `place.stream.caption.getCaptions?…&track=<id>.vtt`, each with X-TIMESTAMP-MAP.
//
// The record key picks the shape: `muxed` (one variant with audio and video together),
// `tracks` (two audio renditions: 440 Hz "main" and 880 Hz "commentary"), `nocaptions`,
// `elsewhere` (this node answers `404 BlobNotFound` and names a second node, started
// here too, that has it), `broken` (500), `missing` (404 VideoNotFound); any other key:
// one audio rendition and captions.
//
// The fixture (two minutes of `testsrc2` with tones, 640×360, H.264 + AAC) is made once
// per machine (about 15 s) and kept in $STREAMHUT_FIXTURES_DIR or
// ~/.cache/streamhut/fixtures. Prints `READY {"url", "alternate"}` and serves until its
// stdin closes or it is signalled. `GET /debug/sessions` lists the sids minted so far.
//
//   node end2end/network/origin.mjs

import { spawnSync } from "node:child_process";
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";

const root = process.env.STREAMHUT_FIXTURES_DIR ?? join(homedir(), ".cache", "streamhut", "fixtures");
const dir = join(root, "e2e-v2-120s-640x360");
const ffmpeg = process.env.FFMPEG_PATH ?? "ffmpeg";
const SECONDS = 120;
const CAPTION_TRACK = "record-auto-en-1a2b3c4d";

function run(args) {
  const result = spawnSync(ffmpeg, ["-nostdin", "-v", "error", ...args], { stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0) throw new Error(`ffmpeg ${args.join(" ")} failed`);
}

/** One CMAF rendition of `input` (selected by `map`), in one file with its init split off. */
function rendition(work, input, map, name) {
  run([
    "-i", input, "-map", map, "-c", "copy", "-f", "hls", "-hls_time", "4",
    "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "single_file",
    "-hls_segment_filename", join(work, `${name}.mp4`), join(work, `${name}.m3u8`),
  ]);
  const text = readFileSync(join(work, `${name}.m3u8`), "utf8");
  const init = /#EXT-X-MAP:URI="[^"]+",BYTERANGE="(\d+)@(\d+)"/.exec(text);
  if (!init) throw new Error(`${name}: no init section`);
  const [length, offset] = [Number(init[1]), Number(init[2])];
  const bytes = Buffer.alloc(length);
  const fd = openSync(join(work, `${name}.mp4`), "r");
  readSync(fd, bytes, 0, length, offset);
  closeSync(fd);
  writeFileSync(join(work, `${name}-init.mp4`), bytes);
}

if (!existsSync(join(dir, "done"))) {
  const work = `${dir}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const source = join(work, "source.mp4");
  run([
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000",
    "-t", String(SECONDS), "-map", "0:v", "-map", "1:a", "-map", "2:a",
    "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main",
    "-g", "48", "-keyint_min", "48", "-sc_threshold", "0", "-crf", "30", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "64k", source,
  ]);
  rendition(work, source, "0:v", "video");
  rendition(work, source, "0:a:0", "main");
  rendition(work, source, "0:a:1", "commentary");
  // The older muxed shape: video and the main audio in one rendition.
  run([
    "-i", source, "-map", "0:v", "-map", "0:a:0", "-c", "copy", "-f", "hls", "-hls_time", "4",
    "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "single_file",
    "-hls_segment_filename", join(work, "muxed.mp4"), join(work, "muxed.m3u8"),
  ]);
  writeFileSync(join(work, "done"), "e2e-v2");
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The segments of an ffmpeg playlist: [{duration, length, offset}]. */
function segmentsOf(name) {
  const lines = readFileSync(join(dir, `${name}.m3u8`), "utf8").split("\n");
  const segments = [];
  let duration = 0;
  let next = 0;
  for (const line of lines) {
    if (line.startsWith("#EXTINF:")) duration = Number(line.slice(8).split(",")[0]);
    const range = /^#EXT-X-BYTERANGE:(\d+)(?:@(\d+))?/.exec(line);
    if (range) {
      const length = Number(range[1]);
      const offset = range[2] === undefined ? next : Number(range[2]);
      segments.push({ duration, length, offset });
      next = offset + length;
    }
  }
  return segments;
}

const RENDITIONS = { video: segmentsOf("video"), main: segmentsOf("main"), commentary: segmentsOf("commentary") };
const MUXED = readFileSync(join(dir, "muxed.m3u8"), "utf8");
const TRACKS = { 1: "video", 2: "main", 3: "commentary" };

/** stream.place's way of writing a query: keys sorted, `url.Values.Encode`. */
function query(values) {
  return Object.keys(values)
    .sort()
    .map((key) => `${encodeURIComponent(key)}=${encodeURIComponent(values[key])}`)
    .join("&");
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": "content-length, content-range",
};

function json(response, status, body) {
  response.writeHead(status, { "content-type": "application/json", ...CORS });
  response.end(JSON.stringify(body));
}

function m3u8(response, text) {
  response.writeHead(200, { "content-type": "application/vnd.apple.mpegurl", "cache-control": "public, max-age=60", ...CORS });
  response.end(text);
}

function masterPlaylist(uri, sid, shape) {
  const playlist = (extra) => `/xrpc/place.stream.playback.getVideoPlaylist?${query({ uri, sid, ...extra })}`;
  const lines = ["#EXTM3U", "#EXT-X-VERSION:6", ""];
  const audio = shape === "tracks" ? [2, 3] : [2];
  for (const [n, track] of audio.entries()) {
    lines.push(
      `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="mp4a.40.2",DEFAULT=${n === 0 ? "YES" : "NO"},AUTOSELECT=YES,CHANNELS="1",URI="${playlist({ track: String(track) })}"`,
    );
  }
  const captions = shape !== "nocaptions";
  if (captions) {
    lines.push(
      `#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="cc",NAME="en (auto-generated)",LANGUAGE="en",AUTOSELECT=YES,DEFAULT=NO,URI="${playlist({ captions: CAPTION_TRACK })}"`,
    );
  }
  lines.push("");
  lines.push(
    `#EXT-X-STREAM-INF:BANDWIDTH=600000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=24.000,AUDIO="audio"${captions ? ',SUBTITLES="cc"' : ""}`,
  );
  lines.push(playlist({ track: "1" }));
  return `${lines.join("\n")}\n`;
}

function blobURL(did, sid, cid) {
  return `/xrpc/place.stream.playback.getVideoBlob?${query({ did, sid })}&cid=${encodeURIComponent(cid)}.m4s`;
}

function mediaPlaylist(did, sid, name) {
  const segments = RENDITIONS[name];
  const target = Math.max(1, Math.ceil(Math.max(...segments.map((s) => s.duration))));
  const lines = [
    "#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
    `#EXT-X-TARGETDURATION:${target}`, "#EXT-X-MEDIA-SEQUENCE:0",
    `#EXT-X-MAP:URI="${blobURL(did, sid, `${name}-init`)}"`, "",
  ];
  for (const segment of segments) {
    lines.push(`#EXTINF:${segment.duration.toFixed(6)},`, `#EXT-X-BYTERANGE:${segment.length}@${segment.offset}`, blobURL(did, sid, name));
  }
  lines.push("#EXT-X-ENDLIST");
  return `${lines.join("\n")}\n`;
}

function subtitlePlaylist(uri) {
  const segments = RENDITIONS.video;
  const lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"];
  let start = 0;
  for (const segment of segments) {
    const end = start + segment.duration;
    const q = query({ video: uri, format: "vtt", start: String(Math.round(start * 1000)), end: String(Math.ceil(end * 1000)), mpegts: "0" });
    lines.push(`#EXTINF:${segment.duration.toFixed(6)},`, `/xrpc/place.stream.caption.getCaptions?${q}&track=${CAPTION_TRACK}.vtt`);
    start = end;
  }
  lines.push("#EXT-X-ENDLIST");
  return `${lines.join("\n")}\n`;
}

/** A caption every four seconds: "Caption 1" at 0 s, "Caption 2" at 4 s, … */
function captions(startMs, endMs, mpegts) {
  const clock = (ms) => {
    const pad = (n, width = 2) => String(n).padStart(width, "0");
    return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}.${pad(ms % 1000, 3)}`;
  };
  const out = ["WEBVTT"];
  if (mpegts !== null) out.push(`X-TIMESTAMP-MAP=MPEGTS:${mpegts},LOCAL:00:00:00.000`);
  out.push("");
  for (let at = 0; at < SECONDS * 1000; at += 4000) {
    const cueEnd = at + 3500;
    if (cueEnd <= startMs || at >= endMs) continue;
    out.push(`${clock(at)} --> ${clock(cueEnd)}`, `Caption ${at / 4000 + 1}: the engine turns`, "");
  }
  return out.join("\n");
}

function serveFile(request, response, file) {
  const size = statSync(file).size;
  const headers = { "content-type": "video/mp4", "accept-ranges": "bytes", "cache-control": "public, max-age=31536000, immutable", ...CORS };
  const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
  if (range) {
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
    response.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${size}`, "content-length": end - start + 1 });
    createReadStream(file, { start, end }).pipe(response);
  } else {
    response.writeHead(200, { ...headers, "content-length": size });
    createReadStream(file).pipe(response);
  }
}

/** A node: `name` in its session ids; `has(shape)`: whether it holds a video of that shape. */
function node(name, has, alternate) {
  const sessions = new Set();
  let minted = 0;
  const mint = () => {
    minted += 1;
    const sid = `${name}-viewer-${minted}`;
    sessions.add(sid);
    return sid;
  };
  return createServer((request, response) => {
    const url = new URL(request.url, "http://origin");
    const params = url.searchParams;
    if (request.method === "OPTIONS") {
      response.writeHead(204, { ...CORS, "access-control-allow-headers": "range", "access-control-allow-methods": "GET, HEAD" });
      response.end();
      return;
    }
    if (url.pathname === "/debug/sessions") return json(response, 200, { sessions: [...sessions] });
    if (url.pathname === "/xrpc/place.stream.playback.getVideoPlaylist") {
      const uri = params.get("uri") ?? "";
      const [, did = "", , shape = ""] = /^at:\/\/([^/]+)\/([^/]+)\/(.+)$/.exec(uri) ?? [];
      if (!did) return json(response, 400, { error: "InvalidRequest", message: "uri must be an AT-URI" });
      if (shape === "missing") return json(response, 404, { message: "VideoNotFound" });
      if (shape === "broken") return json(response, 500, { message: "internal error" });
      if (!has(shape)) {
        // As stream.place: the message names the error; this node also names where the
        // blob is (the alternate node attests it), which stream.place leaves to
        // place.stream.media.origin records.
        return json(response, 404, { error: "BlobNotFound", message: "BlobNotFound", origins: alternate ? [alternate()] : [] });
      }
      const track = params.get("track");
      const caption = params.get("captions");
      if (!track && !caption) {
        if (shape === "muxed") {
          return m3u8(
            response,
            "#EXTM3U\n#EXT-X-VERSION:6\n" +
              '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"\n' +
              `/xrpc/place.stream.playback.getVideoPlaylist?${query({ uri, sid: mint(), track: "1" })}\n`,
          );
        }
        return m3u8(response, masterPlaylist(uri, mint(), shape));
      }
      const sid = params.get("sid");
      if (!sid) {
        const fresh = new URLSearchParams(params);
        fresh.set("sid", mint());
        const location = `${url.pathname}?${query(Object.fromEntries(fresh))}`;
        response.writeHead(302, { location, "cache-control": "no-store", ...CORS });
        response.end();
        return;
      }
      if (!sessions.has(sid)) return json(response, 400, { message: "InvalidSession" });
      if (caption) {
        if (caption !== CAPTION_TRACK) return json(response, 404, { message: "CaptionTrackNotFound" });
        return m3u8(response, subtitlePlaylist(uri));
      }
      if (shape === "muxed") {
        return m3u8(response, MUXED.replace(/^muxed\.mp4$/gm, blobURL(did, sid, "muxed")).replace(/URI="muxed\.mp4"/, `URI="${blobURL(did, sid, "muxed")}"`));
      }
      const name = TRACKS[track];
      if (!name || (name === "commentary" && shape !== "tracks")) return json(response, 404, { message: "TrackNotFound" });
      return m3u8(response, mediaPlaylist(did, sid, name));
    }
    if (url.pathname === "/xrpc/place.stream.playback.getVideoBlob") {
      const cid = (params.get("cid") ?? "").replace(/\.(m4s|mp4)$/, "");
      if (!/^[a-z-]+$/.test(cid) || !existsSync(join(dir, `${cid}.mp4`))) return json(response, 404, { message: "BlobNotFound" });
      return serveFile(request, response, join(dir, `${cid}.mp4`));
    }
    if (url.pathname === "/xrpc/place.stream.caption.getCaptions") {
      const track = (params.get("track") ?? "").replace(/\.vtt$/, "");
      if (track !== CAPTION_TRACK) return json(response, 404, { error: "NotFound", message: "no such caption track" });
      const start = Number(params.get("start") ?? 0);
      const end = params.has("end") ? Number(params.get("end")) : SECONDS * 1000;
      response.writeHead(200, { "content-type": "text/vtt; charset=utf-8", "cache-control": "public, max-age=60", ...CORS });
      response.end(captions(start, end, params.has("mpegts") ? Number(params.get("mpegts")) : null));
      return;
    }
    response.writeHead(404, CORS);
    response.end();
  });
}

const servers = [];
let alternateUrl = "";
const primary = node("a", (shape) => shape !== "elsewhere", () => alternateUrl);
const alternate = node("b", () => true, null);
servers.push(primary, alternate);

function listen(server) {
  return new Promise((done) => server.listen(0, "127.0.0.1", () => done(`http://127.0.0.1:${server.address().port}`)));
}

const url = await listen(primary);
alternateUrl = await listen(alternate);
process.stdout.write(`READY ${JSON.stringify({ url, alternate: alternateUrl })}\n`);

const stop = () => {
  let open = servers.length;
  for (const server of servers) server.close(() => --open === 0 && process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
