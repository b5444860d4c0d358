/** The first three of `items`, joined by ', ', and how many more there are ("a, b, c and 2 more"): how a line names a list. */
export function firstFew(items: readonly string[]): string {
  return `${items.slice(0, 3).join(', ')}${items.length > 3 ? ` and ${items.length - 3} more` : ''}`;
}
