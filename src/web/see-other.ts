import type { Response } from 'express';

/**
 * Answers 303 See Other to `location` with an empty body. Express's
 * `res.redirect` also negotiates a small HTML or text body from the Accept
 * header, which browsers never show for a 303; the flow's redirects are its
 * busiest answers, so they skip that work.
 */
export function seeOther(res: Response, location: string): void {
  res.location(location); // percent-encodes what needs it, as res.redirect does
  res.statusCode = 303;
  res.setHeader('Content-Length', 0);
  res.end();
}
