// Numbers as the reader's locale writes them. The raw text always stays available (`data-raw`,
// `title`): the grounding check, the evaluation and the tests compare what the model wrote.

/** The reader's locale (the browser's), for every number the app formats. */
export const LOCALE: string | undefined = typeof navigator === "undefined" ? undefined : navigator.language;

/**
 * Plain numbers in prose: an optional minus, digits, an optional fraction, not glued to letters,
 * other digits or separators (so `1,234`, `v2`, `3.1.4` and ids with letters are left alone).
 */
export const PROSE_NUMBER = /(?<![\p{L}\p{N}_.,])-?\d+(?:\.\d+)?(?![\p{L}\p{N}_]|[.,]\d)/gu;

/**
 * A number of prose as the reader's locale writes it, or `null` when it is best left as written:
 * integers below 10,000 (years, small counts, ids), numbers with a leading zero (codes), and
 * decimals that already read well. Float noise (`24.686030869999996`) is rounded to 2 decimals
 * (3 significant digits below 1); large integers get the locale's grouping.
 */
export function formatProseNumber(raw: string, locale: string | undefined = LOCALE): string | null {
  const negative = raw.startsWith("-");
  const digits = negative ? raw.slice(1) : raw;
  const [whole = "", fraction = ""] = digits.split(".");
  if (whole.length > 1 && whole.startsWith("0")) return null;
  const value = Number(raw);
  if (!Number.isFinite(value)) return null;
  let options: Intl.NumberFormatOptions;
  if (fraction.length === 0) {
    if (whole.length < 5 || whole.length > 15) return null;
    options = { maximumFractionDigits: 0 };
  } else if (fraction.length >= 4) {
    options = Math.abs(value) < 1 ? { maximumSignificantDigits: 3 } : { maximumFractionDigits: 2 };
  } else {
    options = { minimumFractionDigits: fraction.length, maximumFractionDigits: fraction.length };
  }
  const formatted = new Intl.NumberFormat(locale, options).format(value);
  return formatted === raw ? null : formatted;
}

/** A result cell's number: the locale's separators, no grouping for id-like columns. */
export function formatCellNumber(value: number, column: string, locale: string | undefined = LOCALE): string {
  const idLike = /(^|_)id$/i.test(column) || /Id$/.test(column);
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 6, useGrouping: !idLike }).format(value);
}
