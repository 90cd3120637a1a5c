// Sizes and dates as the reader's locale writes them (lists of documents, escalations, memory).
import { LOCALE } from "./numbers";

const UNITS = ["bytes", "KB", "MB", "GB", "TB"];

/** 1536 → "1.5 KB" (powers of 1024, one decimal from KB on). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 ? 0 : 1;
  return `${new Intl.NumberFormat(LOCALE, { maximumFractionDigits: digits }).format(value)} ${UNITS[unit]}`;
}

const DATE_TIME = new Intl.DateTimeFormat(LOCALE, { dateStyle: "medium", timeStyle: "short" });

/** Milliseconds since the epoch as a short local date and time. */
export function formatTime(ms: number): string {
  return DATE_TIME.format(new Date(ms));
}
