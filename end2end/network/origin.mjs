#!/usr/bin/env node
// A local stream.place origin for the browser tests: an ffmpeg-made video (two minutes of
// `testsrc2` with a tone, 640×360, H.264 + AAC, CMAF in one byte-ranged file) served at
// stream.place's XRPC playlist path, with Range requests, on a free loopback port.
//
// The fixture is made once per machine (about 10 s) and kept in
// $STREAMHUT_FIXTURES_DIR or ~/.cache/streamhut/fixtures. Prints `READY {"url": …}` and
// serves until its stdin closes or it is signalled. Any `uri` gets the same video, except
// one whose record key is `missing` (404 VideoNotFound).
//
//   node end2end/network/origin.mjs

import { spawnSync } from "node:child_process";
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { homedir } from "node:os";
import { join } from "node:path";

const root = process.env.STREAMHUT_FIXTURES_DIR ?? join(homedir(), ".cache", "streamhut", "fixtures");
const dir = join(root, "e2e-v1-120s-640x360");
const ffmpeg = process.env.FFMPEG_PATH ?? "ffmpeg";

function run(args) {
  const result = spawnSync(ffmpeg, ["-nostdin", "-v", "error", ...args], { stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0) throw new Error(`ffmpeg ${args.join(" ")} failed`);
}

if (!existsSync(join(dir, "done"))) {
  const work = `${dir}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  run([
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=24",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main",
    "-g", "48", "-keyint_min", "48", "-sc_threshold", "0", "-crf", "30", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "64k", join(work, "source.mp4"),
  ]);
  run([
    "-i", join(work, "source.mp4"), "-c", "copy", "-f", "hls", "-hls_time", "4",
    "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "single_file",
    "-hls_segment_filename", join(work, "video.mp4"), join(work, "media.m3u8"),
  ]);
  writeFileSync(join(work, "done"), "e2e-v1");
  try {
    renameSync(work, dir);
  } catch {
    rmSync(work, { recursive: true, force: true });
  }
}

const media = readFileSync(join(dir, "media.m3u8"), "utf8");
const video = join(dir, "video.mp4");
const size = statSync(video).size;

const server = createServer((request, response) => {
  const url = new URL(request.url, "http://origin");
  if (url.pathname === "/xrpc/place.stream.playback.getVideoPlaylist") {
    const uri = url.searchParams.get("uri") ?? "";
    if (uri.endsWith("/missing")) {
      response.writeHead(404, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "VideoNotFound", message: "no such video" }));
      return;
    }
    response.writeHead(200, { "content-type": "application/vnd.apple.mpegurl", "access-control-allow-origin": "*" });
    if (url.searchParams.get("track") === "1") {
      response.end(media);
    } else {
      const encoded = encodeURIComponent(uri);
      response.end(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
          '#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"\n' +
          `place.stream.playback.getVideoPlaylist?uri=${encoded}&track=1&sid=e2e\n`,
      );
    }
    return;
  }
  if (url.pathname === "/xrpc/video.mp4") {
    const headers = {
      "content-type": "video/mp4",
      "accept-ranges": "bytes",
      "access-control-allow-origin": "*",
      "access-control-expose-headers": "content-length, content-range",
    };
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), size - 1) : size - 1;
      response.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${size}`, "content-length": end - start + 1 });
      createReadStream(video, { start, end }).pipe(response);
    } else {
      response.writeHead(200, { ...headers, "content-length": size });
      createReadStream(video).pipe(response);
    }
    return;
  }
  if (request.method === "OPTIONS") {
    response.writeHead(204, {
      "access-control-allow-origin": "*",
      "access-control-allow-headers": "range",
      "access-control-allow-methods": "GET, HEAD",
    });
    response.end();
    return;
  }
  response.writeHead(404);
  response.end();
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(`READY ${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();
