// The admin dashboard in a real browser, against the real local AT Protocol network: an
// admin signs in with handle and app password (checked by their PDS), registers a creator
// whose videos are on that PDS, and sees the video count appear.
//
// This spec starts its own network and its own Streamhut (the shared web server knows no
// PDS and no admin), so it is independent of the other specs.
import { test, expect } from "@playwright/test";

import { type Account, Bed, axe, createAccount, sidewaysOverflow, watchConsole, xrpc } from "./support";

const bed = new Bed();
let admin: Account;
let creator: Account;
let baseURL = "";

test.beforeAll(async () => {
  test.setTimeout(90_000);
  // With the origin: the home page shows these videos, and their posters must load.
  await bed.startNetwork(true);
  admin = await createAccount(bed.net, "admin");
  creator = await createAccount(bed.net, "maker");
  for (const [n, title] of ["Opening keynote", "Lightning talks", "Closing panel"].entries()) {
    await xrpc(
      bed.net,
      "com.atproto.repo.createRecord",
      {
        repo: creator.did,
        collection: "place.stream.video",
        record: {
          $type: "place.stream.video",
          title,
          durationMs: 60_000 * (n + 1),
          createdAt: new Date(Date.UTC(2026, 0, n + 1)).toISOString(),
        },
      },
      creator.accessJwt,
    );
  }
  await bed.startServer({ ADMIN_DIDS: admin.did });
  baseURL = bed.baseURL;
});

test.afterAll(async () => {
  await bed.close();
});

test("an admin signs in, registers a creator and sees their video count", async ({ page }) => {
  const errors = watchConsole(page);

  await page.goto(`${baseURL}/admin`);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await page.getByLabel("Handle").fill(admin.handle);
  await page.getByLabel("App password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();

  await expect(page).toHaveURL(`${baseURL}/admin`);
  await expect(page.getByText(`Signed in as ${admin.did}`)).toBeVisible();
  await page.getByPlaceholder("handle or DID").fill(creator.handle);
  await page.getByRole("button", { name: "Register", exact: true }).click();
  await expect(page.getByRole("status")).toContainText(`Registered ${creator.handle}`);

  // The sync runs in the background; the count shows once it is done.
  const row = page.locator(`tr[data-did="${creator.did}"]`);
  await expect(async () => {
    await page.reload();
    await expect(row.locator("td.videos")).toHaveText("3", { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(row).toContainText(creator.handle);
  await axe(page);

  // The dashboard fits every width, its row actions included.
  for (const width of [360, 390, 768, 1366, 1920]) {
    await page.setViewportSize({ width, height: 900 });
    await page.reload();
    expect(await sidewaysOverflow(page), `dashboard at ${width} px`).toBeLessThanOrEqual(0);
    const unregister = row.getByRole("button", { name: /Unregister/ });
    await unregister.scrollIntoViewIfNeeded();
    await expect(unregister).toBeInViewport();
    if (width === 390 || width === 1366) {
      await page.screenshot({ path: `test-results/screenshots/admin-dashboard-${width}.png`, fullPage: true });
    }
  }

  // The videos are on the home page too.
  await page.goto(`${baseURL}/`);
  await expect(page.getByText("Lightning talks")).toBeVisible();
  const watchPath = await page.getByRole("link", { name: "Lightning talks" }).first().getAttribute("href");
  expect(watchPath).toMatch(/^\/watch\//);

  // Taking one video down by its watch page's URL: gone from the site at once, its page
  // says so with a 410; the dashboard lists it, and restoring brings it back.
  await page.goto(`${baseURL}/admin`);
  await page.getByPlaceholder("watch page URL or at:// URI").fill(`${baseURL}${watchPath}`);
  await page.getByPlaceholder("reason (kept in the audit log)").fill("Reported as spam");
  await page.getByRole("button", { name: "Take down" }).click();
  await expect(page.getByRole("status")).toContainText("Took down at://");
  const takedown = page.locator("tr[data-uri]");
  await expect(takedown).toContainText("Lightning talks");
  await expect(takedown).toContainText("Reported as spam");
  await expect(page.locator("table.audit")).toContainText("takedownVideo");
  await axe(page);
  await page.setViewportSize({ width: 390, height: 900 });
  expect(await sidewaysOverflow(page), "dashboard with a takedown at 390 px").toBeLessThanOrEqual(0);
  await page.screenshot({ path: "test-results/screenshots/admin-moderation-390.png", fullPage: true });
  await page.setViewportSize({ width: 1366, height: 900 });
  await page.screenshot({ path: "test-results/screenshots/admin-moderation-1366.png", fullPage: true });

  const gone = await page.request.get(`${baseURL}${watchPath}`);
  expect(gone.status()).toBe(410);
  await page.goto(`${baseURL}${watchPath}`);
  await expect(page.getByRole("heading", { name: "This video is no longer available" })).toBeVisible();
  await page.screenshot({ path: "test-results/screenshots/video-removed-1366.png" });
  await page.goto(`${baseURL}/`);
  await expect(page.getByText("Opening keynote")).toBeVisible();
  await expect(page.getByText("Lightning talks")).toHaveCount(0);

  await page.goto(`${baseURL}/admin`);
  await page.getByRole("button", { name: "Restore Lightning talks" }).click();
  await expect(page.getByRole("status")).toContainText("Restored at://");
  await expect(page.locator("table.audit")).toContainText("restoreVideo");
  await expect(page.locator("tr[data-uri]")).toHaveCount(0);
  const back = await page.request.get(`${baseURL}${watchPath}`);
  expect(back.status()).toBe(200);

  // Signing out returns to the sign-in form.
  await page.goto(`${baseURL}/admin`);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  expect(errors).toEqual([]);
});

test("a wrong app password is refused with a clear message", async ({ page }) => {
  await page.goto(`${baseURL}/admin`);
  await page.getByLabel("Handle").fill(admin.handle);
  await page.getByLabel("App password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("wrong");
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
});

test("the dashboard works with JavaScript turned off", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(`${baseURL}/admin`);
  await page.getByLabel("Handle").fill(admin.handle);
  await page.getByLabel("App password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByText(`Signed in as ${admin.did}`)).toBeVisible();
  await page.getByRole("button", { name: "Sync all" }).click();
  await expect(page.getByRole("status")).toContainText("Syncing");
  await expect(page.getByRole("heading", { name: "Last job runs" })).toBeVisible();
  await context.close();
});
