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
  const formatter = new Formatter(lines, options);
  formatter.format(0, lines.length);
  const joined = formatter.out.join('\n');
  return lines.length > 0 && text.endsWith('\n') ? `${joined}\n` : joined;
}

class Formatter {
  readonly out: string[] = [];
  #lines: Cell[][];
  #options: TabwriterOptions;
  /** Widths of the columns to the left of the one being formatted. */
  #widths: number[] = [];

  constructor(lines: Cell[][], options: TabwriterOptions) {
    this.#lines = lines;
    this.#options = options;
  }

  /** Go's recursive format: each block of lines sharing a cell in this column gets one width. */
  format(line0: number, line1: number): void {
    const column = this.#widths.length;
    const hasCell = (i: number): boolean => column < (this.#lines[i]?.length ?? 0) - 1;
    let start = line0;
    for (let i = line0; i < line1; i++) {
      if (!hasCell(i)) continue;
      this.#writeLines(start, i);
      start = i;
      let width = this.#options.minWidth;
      for (; i < line1 && hasCell(i); i++) {
        width = Math.max(width, (this.#lines[i]?.[column]?.width ?? 0) + this.#options.padding);
      }
      this.#widths.push(width);
      this.format(start, i);
      this.#widths.pop();
      start = i;
      i--;
    }
    this.#writeLines(start, line1);
  }

  #writeLines(line0: number, line1: number): void {
    for (let i = line0; i < line1; i++) {
      const line = this.#lines[i] ?? [];
      let text = '';
      line.forEach((cell, j) => {
        text += cell.text;
        const width = this.#widths[j];
        if (j < line.length - 1 && width !== undefined) text += this.#padding(cell.width, width);
      });
      this.out.push(text);
    }
  }

  #padding(textWidth: number, cellWidth: number): string {
    const tab = this.#options.tabWidth;
    const rounded = Math.ceil(cellWidth / tab) * tab;
    return '\t'.repeat(Math.ceil((rounded - textWidth) / tab));
  }
}
