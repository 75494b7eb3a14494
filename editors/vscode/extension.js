// The resdsl extension: highlighting (syntaxes/) and a language client that starts the
// language server, `resdsl lsp` (pip install 'resdsl[lsp]'), for .rds files. The command is the
// `resdsl.server.command` setting, with `resdsl.server.args`.
"use strict";

const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const settings = vscode.workspace.getConfiguration("resdsl.server");
  const server = {
    command: settings.get("command", "resdsl"),
    args: settings.get("args", ["lsp"]),
  };
  client = new LanguageClient(
    "resdsl",
    "resdsl language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "resdsl" }] }
  );
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("resdsl.server")) {
        vscode.window.showInformationMessage("resdsl: reload the window to restart the server");
      }
    })
  );
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
