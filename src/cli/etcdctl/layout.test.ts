import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderTable, tableTitle } from './table.js';
import { tabwrite } from './tabwriter.js';

test('tabwrite pads each block of tab-terminated cells to a multiple of the tab width with tabs', () => {
  const text = 'OPTIONS:\n  -a\tshort\n      --longer-flag-name\tlong\n\nX:\n\tone\n';
  assert.equal(tabwrite(text), 'OPTIONS:\n  -a\t\t\t\tshort\n      --longer-flag-name\tlong\n\nX:\n\tone\n');
});

test('tabwrite aligns nested columns independently per block', () => {
  const text = '\tget\tGets\n\tendpoint status\tStatus\nbreak\n\ta\tb\n';
  assert.equal(tabwrite(text), '\tget\t\tGets\n\tendpoint status\tStatus\nbreak\n\ta\tb\n');
});

test('tableTitle upper-cases and turns underscores and non-numeric dots into spaces', () => {
  assert.equal(tableTitle('raft applied index'), 'RAFT APPLIED INDEX');
  assert.equal(tableTitle('a_b.c'), 'A B C');
  assert.equal(tableTitle('v1.5'), 'V1.5');
});

test('renderTable draws tablewriter borders, centered headers and right-aligned cells', () => {
  const out = renderTable(['endpoint', 'hash'], [['127.0.0.1:2379', '123']]);
  assert.equal(
    out,
    [
      '+----------------+------+',
      '|    ENDPOINT    | HASH |',
      '+----------------+------+',
      '| 127.0.0.1:2379 |  123 |',
      '+----------------+------+',
      '',
    ].join('\n'),
  );
});

test('renderTable wraps cells wider than 30 columns at spaces', () => {
  const long = 'alpha beta gamma delta epsilon zeta eta';
  const out = renderTable(['errors'], [[long]]);
  const rows = out.split('\n').filter((l) => l.startsWith('|'));
  assert.deepEqual(rows.slice(1), ['| alpha beta gamma delta epsilon |', '|                       zeta eta |']);
});
