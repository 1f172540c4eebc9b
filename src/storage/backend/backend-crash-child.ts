/**
 * Test helper (run by backend.test.ts in a child process): applies numbered entries of three writes each,
 * commits now and then without waiting, and SIGKILLs itself at a seeded moment, often mid-commit.
 */
import { Backend } from './backend.js';

const [dir, seedText] = process.argv.slice(2);
let seed = Number(seedText) * 7919;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};

const b = Backend.open(dir!, { batchLimit: 50, batchIntervalMs: 1 });
const killAt = 200 + rand(400);
const value = Buffer.alloc(200, 1);
for (let i = 1; ; i++) {
  for (let j = 0; j < 3; j++) b.put('key', Buffer.from(`${i}-${j}`), value);
  b.setConsistentIndex({ index: i, term: 1 });
  if (rand(10) === 0) void b.commit();
  if (rand(3) === 0) await new Promise((r) => setImmediate(r));
  if (i === killAt) process.kill(process.pid, 'SIGKILL');
}
