/**
 * The name of one of the product's cookies (`sid`, `csrf`, `attempts`):
 * `__Host-` prefixed on https, so no other host of the site can set it.
 */
export function cookieNameFor(options: { secure: boolean }, name: 'sid' | 'csrf' | 'attempts'): string {
  return `${options.secure ? '__Host-' : ''}ipernity-connect.${name}`;
}
