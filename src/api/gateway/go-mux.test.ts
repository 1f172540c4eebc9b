import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanPath } from './go-mux.js';

test('cleanPath is Go\'s: dots and double slashes resolved, a trailing slash kept, never above the root', () => {
  const cases: Array<[string, string]> = [
    ['/v3//kv/range', '/v3/kv/range'], ['/v3/kv/./range', '/v3/kv/range'], ['/v3/kv/../kv/range', '/v3/kv/range'],
    ['//health', '/health'], ['/health/', '/health/'], ['/a//b/', '/a/b/'], ['/..', '/'], ['/a/b/../../..', '/'],
    ['', '/'], ['/', '/'], ['v3', '/v3'], ['/v3/', '/v3/'], ['/a/./', '/a/'],
  ];
  for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
});
