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
