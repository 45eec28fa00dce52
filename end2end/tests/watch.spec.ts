// What viewers and link-preview crawlers get, in a real browser, against the local AT
// Protocol network and a local video origin (two minutes of H.264/AAC that Debian's
// Chromium plays through MSE): the home grid with thumbnails and hover previews, the
// watch page's player (it plays, ?t= starts there, seeking and shortcuts work, the seek bar
// shows storyboard frames), sharing, link-preview tags (escaped), oEmbed, the embed page,
// the creator page, a 404, accessibility (axe), no horizontal overflow from 360 px to
// 1920 px, no console errors, and screenshots at 390 px and 1366 px.
import { test, expect } from "@playwright/test";

import { type Account, Bed, axe, createAccount, putRecord, sidewaysOverflow, watchConsole } from "./support";

const bed = new Bed();
let creator: Account;
let baseURL = "";
const HOSTILE = `A "quoted" talk "><script>alert(1)</script></title> & more`;

test.beforeAll(async () => {
  test.setTimeout(120_000);
  await bed.startNetwork(true);
  creator = await createAccount(bed.net, "creator");
  await putRecord(bed.net, creator, "app.bsky.actor.profile", "self", {
    $type: "app.bsky.actor.profile",
    displayName: "Ada Lovelace",
    description: "Talks about engines.\nMore at https://example.com/ada",
  });
  const videos: [string, string, string][] = [
    ["keynote", "Opening keynote", "The first talk.\nSlides: https://example.com/slides and more.\nLine three.\nLine four.\nLine five."],
    ["hostile", HOSTILE, `Description with </script><script>alert(2)</script> inside`],
    ["panel", "Closing panel", "Everyone on stage."],
  ];
  for (const [n, [rkey, title, description]] of videos.entries()) {
    await putRecord(bed.net, creator, "place.stream.video", rkey, {
      $type: "place.stream.video",
      title,
      description,
      durationMs: 120_000,
      createdAt: new Date(Date.UTC(2026, 0, n + 1)).toISOString(),
    });
  }
  await bed.startServer();
  baseURL = bed.baseURL;
  await bed.register(creator, 3);
});

test.afterAll(async () => {
  await bed.close();
});

const watchPath = () => `/watch/${creator.did}/keynote`;

test("the home grid shows thumbnails, previews on hover, and links to creators", async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto(`${baseURL}/`);
  const card = page.locator(".video-card").filter({ hasText: "Opening keynote" });
  await expect(card).toBeVisible();
  await expect(card.getByRole("link", { name: "Ada Lovelace" })).toHaveAttribute("href", `/profile/${creator.handle}`);
  await expect(card.locator("time")).toHaveAttribute("title", /2026/);
  // The thumbnail arrives (a frame, made by ffmpeg on first request).
  const image = card.locator(".video-card__poster img");
  await image.scrollIntoViewIfNeeded();
  await expect
    .poll(async () => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth), { timeout: 30_000 })
    .toBeGreaterThan(0);
  // Hovering cycles through the sprite's frames.
  await expect(async () => {
    await page.mouse.move(0, 0);
    await card.hover();
    await expect(card).toHaveAttribute("data-preview-frame", /[1-7]/, { timeout: 3_000 });
  }).toPass({ timeout: 30_000 });
  await axe(page);
  expect(errors).toEqual([]);
});

test("with reduced motion, a hovered card shows one frame and does not cycle", async ({ page }) => {
  await page.emulateMedia({ reducedMotion: "reduce" });
  await page.goto(`${baseURL}/`);
  const card = page.locator(".video-card").filter({ hasText: "Opening keynote" });
  await expect(async () => {
    await page.mouse.move(0, 0);
    await card.hover();
    await expect(card).toHaveAttribute("data-preview-frame", "0", { timeout: 3_000 });
  }).toPass({ timeout: 30_000 });
  await page.waitForTimeout(2_000);
  await expect(card).toHaveAttribute("data-preview-frame", "0");
});

test("the watch page plays, seeks, starts at ?t= and answers shortcuts", async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto(`${baseURL}${watchPath()}`);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Opening keynote");
  await expect(page).toHaveTitle("Streamhut | Opening keynote");
  const video = page.locator(".player video");
  await page.getByRole("button", { name: /^Play/ }).first().click();
  await expect.poll(async () => video.evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 30_000 }).toBeGreaterThan(1);
  // j/l seek by 10 s; k pauses.
  const before = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
  await page.locator("body").press("l");
  await expect.poll(async () => video.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThan(before + 8);
  await page.locator("body").press("k");
  await expect.poll(async () => video.evaluate((v: HTMLVideoElement) => v.paused)).toBe(true);
  // The description keeps its lines and links its URLs.
  await expect(page.locator(".watch__description a")).toHaveAttribute("href", "https://example.com/slides");
  // Without the wasm all of it shows; once the island has hydrated, it is collapsed and
  // "…more" shows all of it.
  expect(await (await page.request.get(`${baseURL}${watchPath()}`)).text()).not.toContain("…more");
  const more = page.getByRole("button", { name: "…more" });
  await expect(more).toHaveAttribute("aria-expanded", "false");
  const collapsed = await page.locator(".watch__description").evaluate((e) => e.clientHeight);
  await more.click();
  await expect(page.getByRole("button", { name: "Show less" })).toHaveAttribute("aria-expanded", "true");
  expect(await page.locator(".watch__description").evaluate((e) => e.clientHeight)).toBeGreaterThanOrEqual(collapsed);
  // Hovering the seek bar shows the storyboard frame for that time.
  const seek = page.getByRole("slider", { name: "Seek" });
  const box = (await seek.boundingBox())!;
  await expect(async () => {
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
    await page.mouse.move(box.x + box.width * 0.62, box.y + box.height / 2);
    await expect(page.locator(".player__preview")).toHaveAttribute("data-cue", /\d+/, { timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.locator(".player__preview-frame")).toHaveCSS("background-image", /getStoryboard/);
  await axe(page);
  expect(errors).toEqual([]);

  // ?t=90 starts near 90 s.
  await page.goto(`${baseURL}${watchPath()}?t=90`);
  await page.getByRole("button", { name: /^Play/ }).first().click();
  await expect
    .poll(async () => page.locator(".player video").evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 30_000 })
    .toBeGreaterThan(88);
});

test("the share button copies the canonical URL, with the time if asked", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.goto(`${baseURL}${watchPath()}`);
  await page.getByRole("button", { name: "Share" }).click();
  await expect(page.getByRole("button", { name: "Share" })).toHaveAttribute("data-copied", "1");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`${baseURL}${watchPath()}`);
  // "at current time" adds the player's second (pointing at the player loads it).
  const video = page.locator(".player video");
  await page.locator(".player").hover();
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.readyState), { timeout: 30_000 }).toBeGreaterThan(0);
  await video.evaluate((v: HTMLVideoElement) => (v.currentTime = 42));
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => Math.floor(v.currentTime))).toBe(42);
  await page.getByLabel("at current time").check();
  await page.getByRole("button", { name: "Share" }).click();
  await expect.poll(() => page.evaluate(() => navigator.clipboard.readText())).toBe(`${baseURL}${watchPath()}?t=42`);
});

test("link previews: Open Graph, Twitter and JSON-LD on the server, escaped", async ({ request }) => {
  const response = await request.get(`${baseURL}/watch/${creator.did}/hostile`);
  expect(response.status()).toBe(200);
  expect(response.headers()["content-encoding"]).toMatch(/gzip|br/);
  const html = await response.text();
  expect(html).not.toContain("<script>alert(1)</script>");
  expect(html).not.toContain("<script>alert(2)</script>");
  expect(html).toContain(`<title>Streamhut | A &quot;quoted&quot; talk &quot;&gt;&lt;script&gt;`);
  const meta = (property: string) => new RegExp(`<meta (?:property|name)="${property}" content="([^"]*)"`).exec(html)?.[1];
  expect(meta("og:title")).toContain("&quot;&gt;&lt;script&gt;");
  expect(meta("og:type")).toBe("video.other");
  expect(meta("og:site_name")).toBe("Streamhut");
  expect(meta("og:url")).toBe(`${baseURL}/watch/${creator.did}/hostile`);
  expect(meta("og:image")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/vod\/getThumbnail\?uri=/);
  expect(meta("og:image:width")).toBe("640");
  expect(meta("twitter:card")).toBe("player");
  expect(meta("twitter:player")).toBe(`${baseURL}/embed/${creator.did}/hostile`);
  const link = (rel: string) => new RegExp(`<link[^>]*rel="${rel}"[^>]*>`).exec(html)?.[0] ?? "";
  expect(link("canonical")).toContain(`href="${baseURL}/watch/${creator.did}/hostile"`);
  expect(link("alternate")).toContain('type="application/json+oembed"');
  expect(link("alternate")).toMatch(/href="[^"]*\/oembed\?format=json&amp;url=/);
  const ld = /<script[^>]*type="application\/ld\+json"[^>]*>([^<]*)<\/script>/.exec(html)?.[1];
  const object = JSON.parse(ld!);
  expect(object["@type"]).toBe("VideoObject");
  expect(object.name).toBe(HOSTILE);
  expect(object.duration).toBe("PT0H2M0S");
  expect(object.embedUrl).toBe(`${baseURL}/embed/${creator.did}/hostile`);
});

test("oEmbed describes watch pages and nothing else", async ({ request }) => {
  const url = `${baseURL}${watchPath()}`;
  const response = await request.get(`${baseURL}/oembed?format=json&url=${encodeURIComponent(url)}`);
  expect(response.status()).toBe(200);
  const body = await response.json();
  expect(body).toMatchObject({ version: "1.0", type: "video", provider_name: "Streamhut", title: "Opening keynote", width: 640, height: 360 });
  expect(body.html).toContain(`<iframe src="${baseURL}/embed/${creator.did}/keynote"`);
  expect((await request.get(`${baseURL}/oembed?url=${encodeURIComponent("https://example.com/x")}`)).status()).toBe(404);
  expect((await request.get(`${baseURL}/oembed?format=xml&url=${encodeURIComponent(url)}`)).status()).toBe(501);
});

test("the embed page is the player alone, and it plays", async ({ page }) => {
  const errors = watchConsole(page);
  const response = await page.goto(`${baseURL}/embed/${creator.did}/keynote`);
  expect(response?.headers()["content-security-policy"]).toContain("frame-ancestors *");
  await expect(page.locator(".site-header")).toHaveCount(0);
  await page.getByRole("button", { name: /^Play/ }).first().click();
  await expect
    .poll(async () => page.locator("video").evaluate((v: HTMLVideoElement) => v.currentTime), { timeout: 30_000 })
    .toBeGreaterThan(1);
  expect(errors).toEqual([]);
});

test("the creator page shows their profile and videos", async ({ page }) => {
  const errors = watchConsole(page);
  const response = await page.goto(`${baseURL}/profile/${creator.handle}`);
  expect(response?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Ada Lovelace");
  await expect(page.getByText(`@${creator.handle}`)).toBeVisible();
  await expect(page.locator(".video-card")).toHaveCount(3);
  const html = await (await page.request.get(`${baseURL}/profile/${creator.handle}`)).text();
  expect(html).toContain('<meta property="og:type" content="profile"');
  await axe(page);
  expect(errors).toEqual([]);
});

test("a missing video is a real 404", async ({ page }) => {
  const response = await page.goto(`${baseURL}/watch/${creator.did}/missing`);
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("This video isn’t available");
});

test("no page overflows sideways from 360 px to 1920 px or fails axe, and screenshots are kept", async ({ page }) => {
  test.setTimeout(240_000);
  const errors = watchConsole(page);
  const pages = [
    ["home", "/"],
    ["watch", watchPath()],
    ["creator", `/profile/${creator.handle}`],
    ["search", "/search?q=keynote"],
    ["about", "/about"],
    ["admin", "/admin"],
    ["embed", `/embed/${creator.did}/keynote`],
    ["not-found", "/watch/nobody/missing"],
    ["tag", "/tag/nothing-tagged-so"],
    ["page-not-found", "/no/such/page"],
  ];
  for (const width of [360, 390, 768, 1366, 1920]) {
    await page.setViewportSize({ width, height: 900 });
    for (const [name, path] of pages) {
      await page.goto(`${baseURL}${path}`);
      // site.js marks the page once hydration is done and the player and cards are set up.
      await page.locator("html[data-enhanced]").waitFor({ state: "attached" });
      expect(await sidewaysOverflow(page), `${name} at ${width} px`).toBeLessThanOrEqual(0);
      if (width === 390) {
        await axe(page);
        // Every page, errors included, describes itself once for search results.
        const descriptions = page.locator('meta[name="description"]');
        await expect(descriptions, `${name}: one meta description`).toHaveCount(1);
        expect((await descriptions.getAttribute("content"))?.trim(), name).toBeTruthy();
        await expect(page.locator('link[rel="icon"][href="/favicon.ico"]')).toHaveCount(1);
        await expect(page.locator('link[rel="manifest"]')).toHaveCount(1);
      }
      if (width === 390 || width === 1366) {
        await page.screenshot({ path: `test-results/screenshots/${name}-${width}.png`, fullPage: true });
      }
    }
  }
  expect(errors).toEqual([]);
});
