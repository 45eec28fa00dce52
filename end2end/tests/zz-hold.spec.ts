import { test } from "@playwright/test";
import { existsSync, writeFileSync } from "node:fs";
import { type Account, Bed, createAccount, putRecord } from "./support";

test("hold a seeded server", async () => {
  test.setTimeout(40 * 60_000);
  const bed = new Bed();
  await bed.startNetwork(true);
  const creator: Account = await createAccount(bed.net, "lighthouse");
  const text = `Our keynote about engines.\n\n0:00 Welcome\n0:30 The engine\n1:00 Questions`;
  const shapes = ["talk", "tracks", "muxed", "nocaptions", "keynote", "intro", "panel", "demo"];
  for (const [n, rkey] of shapes.entries()) {
    await putRecord(bed.net, creator, "place.stream.video", rkey, {
      $type: "place.stream.video", title: `Talk number ${n + 1}: ${rkey} and the engine room`, description: text,
      tags: ["rust", "conference"], durationMs: 120_000, createdAt: new Date(Date.UTC(2026, 10, n + 1)).toISOString(),
    });
  }
  await bed.startServer();
  await bed.register(creator, shapes.length);
  writeFileSync("/tmp/lh-bed.json", JSON.stringify({ baseURL: bed.baseURL, did: creator.did, handle: creator.handle }));
  while (!existsSync("/tmp/lh-stop")) await new Promise((r) => setTimeout(r, 1000));
  await bed.close();
});
