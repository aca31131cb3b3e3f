// The command loop of the Node load generators (loadgen.js, presence_load.js):
// one JSON command a line on stdin ({"id": n, "cmd": "name", ...}), run one at
// a time in order, one answer a line on stdout: {"id": n, "ok": true,
// "result": ...} or {"id": n, "ok": false, "error": "..."}. Exits when stdin
// closes, after the command under way.

'use strict';

const readline = require('readline');

function serve(commands) {
  const lines = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  lines.on('line', (line) => {
    queue = queue.then(async () => {
      let cmd;
      try {
        cmd = JSON.parse(line);
        const result = await commands[cmd.cmd](cmd);
        process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: true, result })}\n`);
      } catch (err) {
        process.stdout.write(`${JSON.stringify({ id: cmd && cmd.id, ok: false,
          error: String(err && err.stack) })}\n`);
      }
    });
  });
  lines.on('close', () => { queue.then(() => process.exit(0)); });
}

module.exports = { serve };
