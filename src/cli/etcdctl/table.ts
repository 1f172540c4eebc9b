/**
 * The tables etcdctl draws with olekukonko/tablewriter: borders of + - |, an upper-cased centered header,
 * cells right-aligned, and cells wider than 30 columns wrapped at spaces into several lines.
 */

const cellWidthMax = 30;
const wrapPenalty = 1e5;

/** Display width in terminal columns: wide East Asian characters take two, combining marks none. */
export function displayWidth(s: string): number {
  let width = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (/\p{Mn}|\p{Me}|\p{Cf}/u.test(ch)) continue;
    width += isWide(c) ? 2 : 1;
  }
  return width;
}

function isWide(c: number): boolean {
  return (
    (c >= 0x1100 && c <= 0x115f) ||
    (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) ||
    (c >= 0xac00 && c <= 0xd7a3) ||
    (c >= 0xf900 && c <= 0xfaff) ||
    (c >= 0xfe30 && c <= 0xfe4f) ||
    (c >= 0xff00 && c <= 0xff60) ||
    (c >= 0xffe0 && c <= 0xffe6) ||
    (c >= 0x1f300 && c <= 0x1f64f) ||
    (c >= 0x1f900 && c <= 0x1f9ff) ||
    (c >= 0x20000 && c <= 0x3fffd)
  );
}

/** tablewriter's Title: underscores (and dots not inside numbers) become spaces, trimmed, upper-cased. */
export function tableTitle(name: string): string {
  const chars = [...name];
  const isNumOrSpace = (ch: string | undefined): boolean => ch !== undefined && /[0-9 ]/.test(ch);
  chars.forEach((ch, i) => {
    if (ch === '_') chars[i] = ' ';
    else if (ch === '.') {
      const before = i !== 0 && !isNumOrSpace(chars[i - 1]);
      const after = i !== chars.length - 1 && !isNumOrSpace(chars[i + 1]);
      if (before || after) chars[i] = ' ';
    }
  });
  const trimmed = chars.join('').trim();
  return (trimmed.length === 0 && name.length > 0 ? ' ' : trimmed).toUpperCase();
}

/** Breaks words into lines of at most `limit` columns minimising the squared slack (tablewriter's WrapWords). */
function wrapWords(words: string[], limit: number): string[][] {
  const n = words.length;
  const widths = words.map(displayWidth);
  const lengthOf = (i: number, j: number): number => {
    let total = 0;
    for (let k = i; k <= j; k++) total += (widths[k] ?? 0) + (k > i ? 1 : 0);
    return total;
  };
  const cost = new Array<number>(n).fill(2 ** 31 - 1);
  const breakAt = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    if (lengthOf(i, n - 1) <= limit) {
      cost[i] = 0;
      breakAt[i] = n;
      continue;
    }
    for (let j = i + 1; j < n; j++) {
      const slack = limit - lengthOf(i, j - 1);
      let c = slack * slack + (cost[j] ?? 0);
      if (lengthOf(i, j - 1) > limit) c += wrapPenalty;
      if (c < (cost[i] ?? 0)) {
        cost[i] = c;
        breakAt[i] = j;
      }
    }
  }
  const lines: string[][] = [];
  for (let i = 0; i < n; ) {
    const next = breakAt[i] ?? n;
    lines.push(words.slice(i, next));
    i = next;
  }
  return lines;
}

function wrapString(s: string, limit: number): string[] {
  const words = s.replaceAll('\n', ' ').split(' ');
  let lim = limit;
  for (const w of words) lim = Math.max(lim, displayWidth(w));
  return wrapWords(words, lim).map((line) => line.join(' '));
}

/** Splits one cell into its lines and reports the width it needs, as tablewriter's parseDimension. */
function cellLines(text: string): { lines: string[]; width: number } {
  const raw = text.split('\n');
  let width = Math.min(cellWidthMax, Math.max(0, ...raw.map(displayWidth)));
  const lines = wrapString(raw.join(' '), width);
  for (const line of lines) width = Math.max(width, displayWidth(line));
  return { lines, width };
}

const padLeft = (s: string, width: number): string => ' '.repeat(Math.max(0, width - displayWidth(s))) + s;
const padCenter = (s: string, width: number): string => {
  const gap = width - displayWidth(s);
  if (gap <= 0) return s;
  const left = Math.floor(gap / 2);
  return ' '.repeat(left) + s + ' '.repeat(gap - left);
};

/** Renders a table the way etcdctl does: header centered, every row cell right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = new Map<number, number>();
  const measure = (cells: readonly string[]): string[][] =>
    cells.map((cell, i) => {
      const { lines, width } = cellLines(cell);
      widths.set(i, Math.max(widths.get(i) ?? 0, width));
      return lines;
    });
  const head = measure(header);
  const body = rows.map(measure);
  const columnWidths = [...widths.keys()].sort((a, b) => a - b).map((k) => widths.get(k) ?? 0);
  const rule = '+' + columnWidths.map((w) => '-'.repeat(w + 2) + '+').join('') + '\n';
  let out = rule;
  out += renderLines(head, columnWidths, (s, w) => padCenter(tableTitle(s), w), true);
  out += rule;
  for (const row of body) out += renderLines(row, columnWidths, padLeft, false);
  return out + rule;
}

function renderLines(
  cells: string[][],
  widths: number[],
  pad: (s: string, width: number) => string,
  isHeader: boolean,
): string {
  const height = Math.max(0, ...cells.map((c) => c.length));
  let out = '';
  for (let x = 0; x < height; x++) {
    const columns = isHeader ? widths.length : cells.length;
    out += '|';
    for (let y = 0; y < columns; y++) {
      // Short cells are filled with two spaces per missing line, as tablewriter does.
      const text = cells[y]?.[x] ?? (isHeader ? '' : '  ');
      out += ` ${pad(text, widths[y] ?? 0)} |`;
    }
    out += '\n';
  }
  return out;
}
