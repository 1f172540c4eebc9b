import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PingStrikes } from './session-policy.js';

test('a client pinging faster than MinTime during calls is cut off at the third strike, as Go does', () => {
  const strikes = new PingStrikes({ minTimeMs: 5000, permitWithoutStream: false });
  assert.equal(strikes.onPing(0, 1), true); // the first ping never counts
  assert.equal(strikes.onPing(1000, 1), true); // strike 1
  assert.equal(strikes.onPing(2000, 1), true); // strike 2
  assert.equal(strikes.onPing(3000, 1), false); // strike 3: GOAWAY
});

test('pings spaced by at least MinTime earn no strike', () => {
  const strikes = new PingStrikes({ minTimeMs: 5000, permitWithoutStream: false });
  for (let i = 0; i < 10; i++) assert.equal(strikes.onPing(i * 5000, 1), true);
});

test('a server write forgives: the next ping clears all strikes', () => {
  const strikes = new PingStrikes({ minTimeMs: 5000, permitWithoutStream: false });
  strikes.onPing(0, 1);
  strikes.onPing(1, 1);
  strikes.onPing(2, 1); // two strikes
  strikes.forgive();
  assert.equal(strikes.onPing(3, 1), true); // forgiven, strikes back to zero
  assert.equal(strikes.onPing(4, 1), true);
  assert.equal(strikes.onPing(5, 1), true);
  assert.equal(strikes.onPing(6, 1), false);
});

test('without calls, pings closer than two hours strike unless PermitWithoutStream', () => {
  const strict = new PingStrikes({ minTimeMs: 5000, permitWithoutStream: false });
  const hourMs = 3_600_000;
  assert.equal(strict.onPing(0, 0), true);
  assert.equal(strict.onPing(hourMs, 0), true);
  assert.equal(strict.onPing(2 * hourMs, 0), true);
  assert.equal(strict.onPing(3 * hourMs, 0), false);

  const lenient = new PingStrikes({ minTimeMs: 5000, permitWithoutStream: true });
  for (let i = 0; i < 10; i++) assert.equal(lenient.onPing(i * hourMs, 0), true);
});
