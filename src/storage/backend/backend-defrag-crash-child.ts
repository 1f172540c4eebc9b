/**
 * Test helper (run by backend-defrag.test.ts in a child process): fills a backend, then applies numbered
 * entries (three puts and one delete of a prefilled key each) while an online defragmentation runs, and
 * SIGKILLs itself at a seeded moment: during the copy, right after the swap, or some writes later.
 */
import { Backend } from './backend.js';

const [dir, seedText] = process.argv.slice(2);
const seedNumber = Number(seedText);
let seed = seedNumber * 7919 + 17;
const rand = (n: number): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed % n;
};

const b = Backend.open(dir!, { batchLimit: 40, batchIntervalMs: 1 });
const filler = Buffer.alloc(400, 2);
for (let i = 0; i < 6000; i++) b.put('key', Buffer.from(`p${i}`), filler);
b.setConsistentIndex({ index: 0, term: 1 });
await b.commit();
const mode = seedNumber % 3;
let killAt = mode === 0 ? 1 + rand(60) : Infinity;
void b.defragment().then(() => {
  if (mode === 1) process.kill(process.pid, 'SIGKILL');
  killAt = 0;
});
const value = Buffer.alloc(100, 1);
let afterSwap = 0;
for (let i = 1; ; i++) {
  for (let j = 0; j < 3; j++) b.put('key', Buffer.from(`${i}-${j}`), value);
  b.delete('key', Buffer.from(`p${i}`));
  b.setConsistentIndex({ index: i, term: 1 });
  if (rand(4) === 0) await b.commit();
  else await new Promise((r) => setImmediate(r));
  if (i >= killAt) process.kill(process.pid, 'SIGKILL');
  if (killAt === 0 && ++afterSwap > rand(30)) process.kill(process.pid, 'SIGKILL');
  if (i > 5000) throw new Error('the defragmentation never finished');
}
