//! `at-run init NAME`: a starter bundle an author can run at once with `at-run dev`, with
//! the SDK beside it so editors and `deno check` know its types.

use std::path::Path;

use anyhow::{Context, bail};

use crate::runner::manifest::valid_bundle_name;

/// Writes the starter bundle `name` into the new directory `name`.
pub(super) fn write(name: &str) -> anyhow::Result<()> {
    if !valid_bundle_name(name) {
        bail!(
            "{name:?} is not a bundle name: lowercase letters, digits and dashes, starting \
             with a letter, at most 64 characters"
        );
    }
    let dir = Path::new(name);
    if dir.exists() {
        bail!(
            "{} exists already: pick another name or directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("main.ts", main_ts(name)),
        ("at-run.ts", crate::runner::SDK_SOURCE.to_string()),
        (
            "deno.json",
            serde_json::to_string_pretty(&serde_json::json!({
                "imports": { "at-run": "./at-run.ts" }
            }))? + "\n",
        ),
        (
            ".env",
            "# Secrets for `at-run dev` (NAME=value); on a runner, use `at-run secrets set`.\nGREETING=hello\n"
                .to_string(),
        ),
        (".gitignore", ".env\n".to_string()),
    ];
    for (file, text) in files {
        let path = dir.join(file);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "wrote {name}/main.ts (your bundle), {name}/at-run.ts (the SDK's types), deno.json, .env\n\
         next:\n  cd {name}\n  at-run dev main.ts          # http://127.0.0.1:8787/{name}/hello?name=you\n  \
         at-run login <your handle>\n  at-run deploy main.ts"
    );
    Ok(())
}

fn main_ts(name: &str) -> String {
    format!(
        r#"// {name}: an at-run bundle. `at-run dev main.ts` serves it locally; `at-run deploy main.ts`
// publishes it to your PDS. The guide: docs/at-run.md in the Streamhut repository.
import {{ endpoint, manifest, task }} from "at-run";

export const bundle = manifest({{
  name: "{name}",
  // What the handlers may use: hosts to fetch, variables (secrets need no entry), ctx.kv.
  permissions: {{ net: [], env: [], kv: true }},
}});

// GET /bundle/<you>/{name}/latest/hello?name=ada
export const hello = endpoint({{
  handler: async (args: {{ name?: string }}, ctx) => {{
    const greeting = Deno.env.get("GREETING") ?? "hello";
    const visits = ((await ctx.kv!.get("visits")) as number | null ?? 0) + 1;
    await ctx.kv!.set("visits", visits);
    console.log(`greeting ${{args.name ?? "you"}} (visit ${{visits}})`);
    return {{ message: `${{greeting}}, ${{args.name ?? "you"}}`, visits, caller: ctx.caller ?? null }};
  }},
}});

// A task: deduplicated by its arguments, cached for an hour, at most 2 at once.
export const slow = task({{
  concurrency: 2,
  cacheTtl: 3600,
  handler: async (args: {{ n?: string }}) => ({{ square: Number(args.n ?? 0) ** 2 }}),
}});
"#
    )
}
