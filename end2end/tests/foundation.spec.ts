// The site's foundation as a viewer meets it: server-rendered HTML, hydration, no console
// errors, a real 404, and a working search box.
import { expect, test, type Page } from "@playwright/test";

/** Collects console errors and uncaught exceptions for the whole test. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`exception: ${err.message}`));
  return errors;
}

/** Clicks the menu button until hydration has wired it, and returns it. */
async function waitForHydration(page: Page) {
  const toggle = page.locator("#nav-toggle");
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  // Before the wasm has hydrated the page a click does nothing, so retry until it counts.
  await expect(async () => {
    await toggle.click();
    await expect(toggle).toHaveAttribute("aria-expanded", "false", { timeout: 250 });
  }).toPass({ timeout: 15_000 });
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  return toggle;
}

test("the raw HTML of / already holds the title, the header and the page", async ({ request }) => {
  const response = await request.get("/");
  expect(response.status()).toBe(200);
  expect(response.headers()["content-type"]).toContain("text/html");
  const html = await response.text();
  expect(html).toContain("<title>Streamhut</title>");
  expect(html).toMatch(/<header class="site-header"/);
  expect(html).toContain('role="search"');
  expect(html).toContain("No videos yet");
  expect(html).toMatch(/\/pkg\/[0-9a-f]{16}\/streamhut\.js/);
});

test("the page hydrates: the menu button toggles the navigation", async ({ page }, testInfo) => {
  const errors = watchErrors(page);
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "No videos yet" })).toBeVisible();

  await waitForHydration(page);
  const toggle = page.locator("#nav-toggle");
  const shell = page.locator(".app");
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-expanded", "false");
  await expect(shell).toHaveClass(/nav-collapsed/);
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-expanded", "true");
  await expect(shell).not.toHaveClass(/nav-collapsed/);

  const screenshot = testInfo.outputPath("home.png");
  await page.screenshot({ path: screenshot, fullPage: true });
  await testInfo.attach("home", { path: screenshot, contentType: "image/png" });
  expect(errors).toEqual([]);
});

test("navigation and search work after hydration, without console errors", async ({ page }) => {
  const errors = watchErrors(page);
  await page.goto("/");
  await waitForHydration(page);

  await page.getByRole("link", { name: "About" }).click();
  await expect(page).toHaveURL(/\/about$/);
  await expect(page.getByRole("heading", { name: "About Streamhut" })).toBeVisible();
  await expect(page).toHaveTitle("Streamhut | About");

  const search = page.getByRole("searchbox", { name: "Search videos" });
  await search.fill("lightning talks");
  await search.press("Enter");
  await expect(page).toHaveURL(/\/search\?q=lightning(\+|%20)talks$/);
  await expect(page.getByRole("heading", { name: "No matching videos" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("an unknown path shows the 404 page with status 404", async ({ page }) => {
  const errors = watchErrors(page);
  const response = await page.goto("/this/page/does-not-exist");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "This page isn’t here" })).toBeVisible();
  await expect(page).toHaveTitle("Streamhut | Page not found");
  await expect(page.getByRole("link", { name: "Back to the home page" })).toBeVisible();
  expect(errors.filter((e) => !e.includes("404"))).toEqual([]);
});

test("health answers 200 and unknown API paths answer XRPC errors", async ({ request }) => {
  const health = await request.get("/healthz");
  expect(health.status()).toBe(200);
  expect(await health.json()).toEqual({ status: "ok" });

  const missing = await request.get("/api/noSuchMethod");
  expect(missing.status()).toBe(404);
  const body = await missing.json();
  expect(body.error).toBe("NotFound");
  expect(typeof body.message).toBe("string");
});
