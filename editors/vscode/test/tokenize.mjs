// Tokenise .rds files with the extension's TextMate grammar, as VS Code does (vscode-textmate with
// the Oniguruma regex engine), and print one JSON object: {file: [[line, [text, scopes...]...]]}.
// Usage: node test/tokenize.mjs FILE...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const here = dirname(fileURLToPath(import.meta.url));
const wasm = readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
await oniguruma.loadWASM(wasm);

const registry = new vsctm.Registry({
  onigLib: Promise.resolve({
    createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
    createOnigString: (text) => new oniguruma.OnigString(text),
  }),
  loadGrammar: async (scopeName) => {
    if (scopeName !== "source.resdsl") return null;
    const path = join(here, "..", "syntaxes", "resdsl.tmLanguage.json");
    return vsctm.parseRawGrammar(readFileSync(path, "utf8"), path);
  },
});

const grammar = await registry.loadGrammar("source.resdsl");
const out = {};
for (const file of process.argv.slice(2)) {
  const lines = readFileSync(file, "utf8").split("\n");
  let stack = vsctm.INITIAL;
  out[file] = lines.map((line, number) => {
    const result = grammar.tokenizeLine(line, stack);
    stack = result.ruleStack;
    const tokens = result.tokens.map((t) => [line.slice(t.startIndex, t.endIndex), ...t.scopes]);
    return [number + 1, tokens];
  });
}
process.stdout.write(JSON.stringify(out));
