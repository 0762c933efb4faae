/** Longest client-sent text copied into a log field; a log line must not grow with what a client sends. */
export const MAX_LOG_FIELD = 200;

export function clip(text: string | null | undefined, max = MAX_LOG_FIELD): string | null | undefined {
  if (text === null || text === undefined || text.length <= max) return text;
  return `${text.slice(0, max)}...[${text.length - max} more]`;
}
