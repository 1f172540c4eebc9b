import assert from 'node:assert/strict';
import { test } from 'node:test';
import { goDuration, goJsonString, goQuote, goStringSlice, humanizeBytes, zapJsonString } from './go-format.js';
import { GoParseError, parseBool, parseDuration, parseInt64, parseUint64 } from './go-parse.js';

test('goQuote follows strconv.Quote: printable runes kept, control bytes and invalid UTF-8 escaped', () => {
  assert.equal(goQuote('plain'), '"plain"');
  assert.equal(goQuote('q"b\\'), '"q\\"b\\\\"');
  assert.equal(goQuote('\x07\b\f\n\r\t\v'), '"\\a\\b\\f\\n\\r\\t\\v"');
  assert.equal(goQuote('\x00\x01\x7f'), '"\\x00\\x01\\x7f"');
  assert.equal(goQuote('ключ ✓'), '"ключ ✓"');
  assert.equal(goQuote('\u2028\u00a0'), '"\\u2028\\u00a0"');
  assert.equal(goQuote(Buffer.from([0xff, 0xfe, 0x41])), '"\\xff\\xfeA"');
  assert.equal(goQuote('\u{1f600}'), '"\u{1f600}"');
  assert.equal(goQuote('\u{e0001}'), '"\\U000e0001"');
});

test('goJsonString escapes as encoding/json (HTML-safe), zapJsonString does not HTML-escape', () => {
  assert.equal(goJsonString('<a&b>'), '"\\u003ca\\u0026b\\u003e"');
  assert.equal(goJsonString('x\u2028y\u0001\n'), '"x\\u2028y\\u0001\\n"');
  assert.equal(goJsonString('\b\f'), '"\\u0008\\u000c"');
  assert.equal(zapJsonString('<a> "q"'), '"<a> \\"q\\""');
});

test('goDuration prints as time.Duration.String', () => {
  assert.equal(goDuration(0n), '0s');
  assert.equal(goDuration(999n), '999ns');
  assert.equal(goDuration(1500n), '1.5µs');
  assert.equal(goDuration(1_983_118n), '1.983118ms');
  assert.equal(goDuration(2_000_000_000n), '2s');
  assert.equal(goDuration(5_000_775_706n), '5.000775706s');
  assert.equal(goDuration(61_500_000_000n), '1m1.5s');
  assert.equal(goDuration(3_600_000_000_000n), '1h0m0s');
  assert.equal(goDuration(-1_000_000n), '-1ms');
});

test('humanizeBytes matches go-humanize.Bytes, including round-half-even of %.0f', () => {
  assert.equal(humanizeBytes(9n), '9 B');
  assert.equal(humanizeBytes(20480n), '20 kB');
  assert.equal(humanizeBytes(24576n), '25 kB');
  assert.equal(humanizeBytes(1000n), '1.0 kB');
  assert.equal(humanizeBytes(1_234_567n), '1.2 MB');
  assert.equal(humanizeBytes(20_500n), '20 kB');
  assert.equal(humanizeBytes(21_500n), '22 kB');
});

test('goStringSlice prints as %v of a []string', () => {
  assert.equal(goStringSlice([]), '[]');
  assert.equal(goStringSlice(['a', 'b c']), '[a b c]');
});

test('parseInt64 and parseUint64 accept what strconv accepts and fail with its messages', () => {
  assert.equal(parseInt64('42', 10), 42n);
  assert.equal(parseInt64('-7', 10), -7n);
  assert.equal(parseInt64('0x1f', 0), 31n);
  assert.equal(parseInt64('017', 0), 15n);
  assert.equal(parseInt64('1_000', 0), 1000n);
  assert.equal(parseInt64('ff', 16), 255n);
  assert.equal(parseUint64('ba609fd784e6dde1', 16), 0xba609fd784e6dde1n);
  assert.throws(() => parseInt64('x', 10), { message: 'strconv.ParseInt: parsing "x": invalid syntax' });
  assert.throws(() => parseInt64('99999999999999999999', 0), {
    message: 'strconv.ParseInt: parsing "99999999999999999999": value out of range',
  });
  assert.throws(() => parseInt64('9223372036854775808', 10), GoParseError);
  assert.equal(parseInt64('-9223372036854775808', 10), -(2n ** 63n));
  assert.throws(() => parseUint64('zz', 16), { message: 'strconv.ParseUint: parsing "zz": invalid syntax' });
  assert.throws(() => parseInt64('1__0', 0), GoParseError);
  assert.throws(() => parseInt64('', 10), GoParseError);
});

test('parseBool and parseDuration follow strconv.ParseBool and time.ParseDuration', () => {
  assert.equal(parseBool('T'), true);
  assert.equal(parseBool('False'), false);
  assert.throws(() => parseBool('yes'), { message: 'strconv.ParseBool: parsing "yes": invalid syntax' });
  assert.equal(parseDuration('2s'), 2_000_000_000n);
  assert.equal(parseDuration('1.5m'), 90_000_000_000n);
  assert.equal(parseDuration('1h2m3s4ms'), 3_723_004_000_000n);
  assert.equal(parseDuration('300us'), 300_000n);
  assert.equal(parseDuration('0'), 0n);
  assert.equal(parseDuration('-1s'), -1_000_000_000n);
  assert.throws(() => parseDuration('x'), { message: 'time: invalid duration "x"' });
  assert.throws(() => parseDuration('5'), { message: 'time: missing unit in duration "5"' });
  assert.throws(() => parseDuration('5y'), { message: 'time: unknown unit "y" in duration "5y"' });
});
