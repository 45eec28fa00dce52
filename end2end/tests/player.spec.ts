// The player against an origin shaped like today's stream.place (end2end/network/origin.mjs):
// sound from a separate AAC rendition, a menu for several audio tracks, subtitles (a CC
// button, remembered, `c` toggles), playback speed (`<` / `>`), quality with Auto, resume
// where the viewer left off, chapters from the description, `?t=` in 1h2m3s form, a video
// another node has, a clear message with "Try again" when the origin fails, and a Play
// clicked before the player's script has run. Every check is on what Chromium really
// decoded and showed.
import { test, expect, type Page } from "@playwright/test";

import { type Account, Bed, axe, createAccount, putRecord } from "./support";

const bed = new Bed();
let creator: Account;
let baseURL = "";

const CHAPTERED = "A talk in three parts.\n\n0:00 Welcome\n0:30 The engine\n1:00 Questions";

test.beforeAll(async () => {
  test.setTimeout(120_000);
  await bed.startNetwork(true);
  creator = await createAccount(bed.net, "viewer");
  const videos: [string, string, string][] = [
    ["talk", "A talk with sound", CHAPTERED],
    ["tracks", "A talk with commentary", "Two audio tracks."],
    ["elsewhere", "A talk on another node", "Its blob lives on the second node."],
    ["broken", "A talk whose origin fails", "The origin answers 500."],
  ];
  for (const [n, [rkey, title, description]] of videos.entries()) {
    await putRecord(bed.net, creator, "place.stream.video", rkey, {
      $type: "place.stream.video",
      title,
      description,
      durationMs: 120_000,
      createdAt: new Date(Date.UTC(2026, 1, n + 1)).toISOString(),
    });
  }
  const warned = "Flashes ahead. See #demo";
  await putRecord(bed.net, creator, "place.stream.video", "warned", {
    $type: "place.stream.video",
    title: "A talk with a warning",
    description: warned,
    descriptionFacets: [
      {
        index: { byteStart: warned.indexOf("#demo"), byteEnd: warned.indexOf("#demo") + 5 },
        features: [{ $type: "app.bsky.richtext.facet#tag", tag: "demo" }],
      },
    ],
    tags: ["demo"],
    contentWarnings: { warnings: ["place.stream.metadata.contentWarnings#flashingLights"] },
    durationMs: 120_000,
    createdAt: new Date(Date.UTC(2026, 0, 1)).toISOString(),
  });
  await bed.startServer();
  baseURL = bed.baseURL;
  await bed.register(creator, videos.length + 1);
});

test.afterAll(async () => {
  await bed.close();
});

const watch = (rkey: string, query = "") => `${baseURL}/watch/${creator.did}/${rkey}${query}`;
const video = (page: Page) => page.locator(".player video");
const currentTime = (page: Page) => video(page).evaluate((v: HTMLVideoElement) => v.currentTime);

/** Starts playback with the big Play button and waits until `seconds` have played. */
async function playUntil(page: Page, seconds: number) {
  await page.getByRole("button", { name: "Play", exact: true }).click();
  await expect.poll(() => currentTime(page), { timeout: 30_000 }).toBeGreaterThan(seconds);
}

async function openSetting(page: Page, section: RegExp) {
  await page.locator(".player").hover();
  await page.getByRole("button", { name: "Settings" }).click();
  await page.getByRole("menuitem", { name: section }).click();
}

test("a separate AAC audio rendition plays with sound", async ({ page }) => {
  // The related list shows the video whose origin fails: its thumbnail is a 502.
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.location().url.includes("/api/vod/getThumbnail")) errors.push(message.text());
  });
  await page.goto(watch("talk"));
  await playUntil(page, 2);
  const decoded = await video(page).evaluate((v: HTMLVideoElement & { webkitAudioDecodedByteCount: number }) => v.webkitAudioDecodedByteCount);
  expect(decoded, "audio bytes decoded").toBeGreaterThan(0);
  // Quality: Auto and the one rendition.
  await openSetting(page, /Quality/);
  await expect(page.getByRole("menuitemradio", { name: "Auto" })).toHaveAttribute("aria-checked", "true");
  await expect(page.getByRole("menuitemradio", { name: "360p" })).toBeVisible();
  await page.keyboard.press("Escape");
  await axe(page);
  expect(errors).toEqual([]);
});

test("several audio tracks get a track menu, and the other track plays", async ({ page }) => {
  await page.goto(watch("tracks"));
  await playUntil(page, 1);
  await openSetting(page, /Audio track/);
  const items = page.getByRole("menuitemradio");
  await expect(items).toHaveCount(2);
  await expect(items.first()).toHaveAttribute("aria-checked", "true");
  await items.nth(1).click();
  await openSetting(page, /Audio track/);
  await expect(page.getByRole("menuitemradio").nth(1)).toHaveAttribute("aria-checked", "true");
  await page.keyboard.press("Escape");
  const before = await video(page).evaluate((v: HTMLVideoElement & { webkitAudioDecodedByteCount: number }) => v.webkitAudioDecodedByteCount);
  await expect
    .poll(() => video(page).evaluate((v: HTMLVideoElement & { webkitAudioDecodedByteCount: number }) => v.webkitAudioDecodedByteCount), { timeout: 20_000 })
    .toBeGreaterThan(before);
});

test("subtitles: the CC button shows cues, the choice is remembered, and c toggles", async ({ page }) => {
  await page.goto(watch("talk"));
  await playUntil(page, 1);
  const cc = page.getByRole("button", { name: /Subtitles/ });
  await expect(cc).toBeVisible();
  await expect(cc).toHaveAttribute("aria-pressed", "false");
  await cc.click();
  await expect(cc).toHaveAttribute("aria-pressed", "true");
  const showing = () =>
    video(page).evaluate((v: HTMLVideoElement) => {
      const track = [...v.textTracks].find((t) => t.mode === "showing");
      return track?.cues ? [...track.cues].map((c) => (c as VTTCue).text) : [];
    });
  await expect.poll(showing, { timeout: 20_000 }).toContainEqual(expect.stringMatching(/^Caption \d+: the engine turns$/));
  // Remembered on the next visit.
  await page.reload();
  await playUntil(page, 1);
  await expect(page.getByRole("button", { name: /Subtitles/ })).toHaveAttribute("aria-pressed", "true");
  await expect.poll(showing, { timeout: 20_000 }).not.toEqual([]);
  // c turns them off.
  await page.locator("body").press("c");
  await expect(page.getByRole("button", { name: /Subtitles/ })).toHaveAttribute("aria-pressed", "false");
  await expect.poll(showing).toEqual([]);
});

test("playback speed: the menu, < and >, remembered", async ({ page }) => {
  await page.goto(watch("talk"));
  await playUntil(page, 1);
  await openSetting(page, /Playback speed/);
  await page.getByRole("menuitemradio", { name: "1.5×" }).click();
  const rate = () => video(page).evaluate((v: HTMLVideoElement) => v.playbackRate);
  await expect.poll(rate).toBe(1.5);
  await page.locator("body").press(">");
  await expect.poll(rate).toBe(1.75);
  await page.locator("body").press("<");
  await page.locator("body").press("<");
  await expect.poll(rate).toBe(1.25);
  await page.reload();
  await playUntil(page, 0.5);
  await expect.poll(rate).toBe(1.25);
  await page.locator("body").press("<");
  await expect.poll(rate).toBe(1);
});

test("resume: past 30 s watched, the next visit offers to go on from there", async ({ page }) => {
  await page.goto(watch("tracks"));
  await playUntil(page, 0.5);
  await video(page).evaluate((v: HTMLVideoElement) => (v.currentTime = 61));
  await expect.poll(() => currentTime(page), { timeout: 20_000 }).toBeGreaterThan(62);
  // Saved every few seconds of playback.
  await expect
    .poll(() => page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("streamhut.resume.")).map((k) => Number(localStorage.getItem(k)))), { timeout: 20_000 })
    .toContainEqual(expect.any(Number));
  await page.goto(watch("tracks"));
  const resume = page.getByRole("button", { name: /^Resume from 1:0\d$/ });
  await expect(resume).toBeVisible();
  await resume.click();
  await expect.poll(() => currentTime(page), { timeout: 30_000 }).toBeGreaterThan(60);
});

test("chapters: a list, seek-bar markers, a seek per chapter, and key moments for search", async ({ page }) => {
  await page.goto(watch("talk"));
  const list = page.getByRole("region", { name: "Chapters" });
  await expect(list.getByRole("link")).toHaveText([/0:00\s*Welcome/, /0:30\s*The engine/, /1:00\s*Questions/]);
  await expect(page.locator(".player__marker")).toHaveCount(2);
  await list.getByRole("link", { name: /The engine/ }).click();
  await expect.poll(() => currentTime(page), { timeout: 30_000 }).toBeGreaterThan(29);
  await expect(page.locator(".player__chapter")).toHaveText("The engine");
  const html = await (await page.request.get(watch("talk"))).text();
  const ld = JSON.parse(/<script[^>]*type="application\/ld\+json"[^>]*>([^<]*)<\/script>/.exec(html)![1]);
  expect(ld.hasPart.map((clip: { name: string; startOffset: number }) => [clip.name, clip.startOffset])).toEqual([
    ["Welcome", 0],
    ["The engine", 30],
    ["Questions", 60],
  ]);
});

test("?t= takes 1h2m3s forms, through stream.place's URL shape too", async ({ page }) => {
  await page.goto(`${baseURL}/${creator.did}/vod/talk?t=1m30s`);
  await expect(page).toHaveURL(watch("talk", "?t=1m30s"));
  await page.getByRole("button", { name: "Play", exact: true }).click();
  await expect.poll(() => currentTime(page), { timeout: 30_000 }).toBeGreaterThan(89);
});

test("a video whose blob is on another node plays from there, with sound", async ({ page }) => {
  await page.goto(watch("elsewhere"));
  await playUntil(page, 2);
  expect(await video(page).evaluate((v: HTMLVideoElement & { webkitAudioDecodedByteCount: number }) => v.webkitAudioDecodedByteCount)).toBeGreaterThan(0);
});

test("an origin that fails gets a clear message and Try again", async ({ page }) => {
  await page.goto(watch("broken"));
  await page.getByRole("button", { name: "Play", exact: true }).click();
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("can’t be loaded right now", { timeout: 30_000 });
  await expect(alert).toContainText("origin");
  const again = alert.getByRole("button", { name: "Try again" });
  await expect(again).toBeFocused();
  let asked = 0;
  page.on("request", (request) => {
    if (request.url().includes("/api/vod/getPlaylist")) asked += 1;
  });
  await again.click();
  await expect.poll(() => asked).toBeGreaterThan(0);
  await expect(page.getByRole("alert")).toContainText("can’t be loaded right now", { timeout: 30_000 });
});

test("a Play clicked before the player's script has run is not lost", async ({ page }) => {
  let release: () => void = () => {};
  const held = new Promise<void>((done) => (release = done));
  await page.route("**/site.js", async (route) => {
    await held;
    await route.continue();
  });
  await page.goto(`${baseURL}/embed/${creator.did}/talk`, { waitUntil: "commit" });
  await page.locator(".player video").click({ timeout: 10_000 });
  await expect(page.locator(".player")).toHaveAttribute("data-pending-play", "1");
  release();
  await expect.poll(() => currentTime(page), { timeout: 30_000 }).toBeGreaterThan(1);
});

test("a content warning covers the player and the card until the viewer chooses to watch", async ({ page }) => {
  await page.goto(baseURL);
  const card = page.locator(".video-card", { hasText: "A talk with a warning" });
  await expect(card.locator(".video-card__warning")).toHaveText("Content warning: Flashing lights");
  await expect(card).not.toHaveAttribute("data-sprite-vtt");
  await card.getByRole("link", { name: "A talk with a warning" }).click();
  await expect(page).toHaveURL(/\/watch\/.+\/warned$/);
  const cover = page.locator(".player__gate-cover");
  await expect(cover).toContainText("Flashing lights");
  // Nothing plays or loads behind it.
  await expect(page.locator(".player")).not.toHaveAttribute("data-ready");
  await axe(page);
  await page.getByText("Watch anyway").click();
  await expect(cover).toBeHidden();
  await expect.poll(() => currentTime(page), { timeout: 30_000 }).toBeGreaterThan(1);
  // The description's tag leads to the tag page, which lists the video.
  await page.locator(".watch__description").getByRole("link", { name: "#demo" }).click();
  await expect(page).toHaveURL(/\/tag\/demo$/);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("#demo");
  await expect(page.locator(".video-card")).toHaveCount(1);
});
