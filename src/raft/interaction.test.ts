/**
 * Runs every script in src/raft/testdata/*.txt and compares each command's output with the golden
 * text. REWRITE=1 regenerates the golden outputs (then read the diff before committing it).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InteractionEnv, parseScript, renderScript } from './rafttest/interaction.js';

// Tests run from dist/src/raft; the golden files live in the source tree.
const dir = fileURLToPath(new URL('../../../src/raft/testdata/', import.meta.url));
const rewrite = process.env['REWRITE'] === '1';

for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.txt')).sort()) {
  test(`interaction: ${file}`, () => {
    const path = dir + file;
    const { blocks, trailing } = parseScript(fs.readFileSync(path, 'utf8'));
    const env = new InteractionEnv();
    const actual = blocks.map((b) => ({ ...b, expected: env.run(b.command) }));
    if (rewrite) {
      fs.writeFileSync(path, renderScript(actual, trailing));
      return;
    }
    for (let i = 0; i < blocks.length; i++) {
      const b = blocks[i]!;
      assert.equal(actual[i]!.expected, b.expected, `${file}:${b.line}: ${b.command}`);
    }
  });
}
