/**
 * Go's text/tabwriter as etcdctl's help uses it (minwidth 0, tabwidth 8, padding 1, padchar '\t'):
 * tab-terminated cells are aligned into columns per block of consecutive lines, and padded with tabs.
 */

export interface TabwriterOptions {
  minWidth: number;
  tabWidth: number;
  padding: number;
}

export const helpTabwriter: TabwriterOptions = { minWidth: 0, tabWidth: 8, padding: 1 };

interface Cell {
  text: string;
  width: number;
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function splitLines(text: string): Cell[][] {
  const lines = text.split('\n');
  // Text after the last newline is a line of its own only when it is not empty.
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line) => line.split('\t').map((t) => ({ text: t, width: runeCount(t) })));
}

/** Formats `text` as tabwriter.Writer would after Write(text) and Flush(). */
export function tabwrite(text: string, options: TabwriterOptions = helpTabwriter): string {
  const lines = splitLines(text);
  const out: string[] = [];
  const widths: number[] = [];
  format(lines, 0, lines.length, widths, options, out);
  const trailingNewline = text.endsWith('\n');
  const joined = out.join('\n');
  return trailingNewline || lines.length === 0 ? joined + (lines.length > 0 ? '\n' : '') : joined;
}

function format(lines: Cell[][], line0: number, line1: number, widths: number[], o: TabwriterOptions, out: string[]): void {
  const column = widths.length;
  let start = line0;
  for (let i = line0; i < line1; i++) {
    if (column >= (lines[i]?.length ?? 0) - 1) continue;
    // A block of lines with a cell in this column starts here.
    writeLines(lines, start, i, widths, o, out);
    start = i;
    let width = o.minWidth;
    for (; i < line1; i++) {
      const line = lines[i] ?? [];
      if (column >= line.length - 1) break;
      width = Math.max(width, (line[column]?.width ?? 0) + o.padding);
    }
    widths.push(width);
    format(lines, start, i, widths, o, out);
    widths.pop();
    start = i;
    i--;
  }
  writeLines(lines, start, line1, widths, o, out);
}

function writeLines(lines: Cell[][], line0: number, line1: number, widths: number[], o: TabwriterOptions, out: string[]): void {
  for (let i = line0; i < line1; i++) {
    const line = lines[i] ?? [];
    let text = '';
    line.forEach((cell, j) => {
      text += cell.text;
      const width = widths[j];
      if (j < line.length - 1 && width !== undefined) text += tabPadding(cell.width, width, o.tabWidth);
    });
    out.push(text);
  }
}

function tabPadding(textWidth: number, cellWidth: number, tabWidth: number): string {
  const rounded = Math.ceil(cellWidth / tabWidth) * tabWidth;
  return '\t'.repeat(Math.ceil((rounded - textWidth) / tabWidth));
}
