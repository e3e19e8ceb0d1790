import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { UpstreamHttpError, UpstreamNetworkError, UpstreamTimeoutError, UpstreamBadResponseError } from './errors';

/** A photo's bytes as ipernity's media host sends them. */
export interface MediaStream {
  contentType: string;
  /** When the host says it. */
  contentLength?: number;
  body: IncomingMessage;
}

/** Content types passed on: images only, so that a media address can never serve a page on the site's origin. */
const IMAGE = /^image\/(png|jpeg|gif|webp|avif)$/;

/**
 * Opens one of ipernity's media addresses (`doc.getMedias` gives them; a
 * private photo's carries its secret) and answers its bytes as a stream, once
 * the headers are in: an image, or a typed error (`UpstreamHttpError`,
 * `UpstreamTimeoutError` when the host is silent for `timeoutMs`, then also
 * between two chunks of the image, which ends `body` with that error;
 * `UpstreamBadResponseError` for anything but an image). The caller reads or
 * destroys `body`.
 */
export function openMedia(address: string, timeoutMs: number): Promise<MediaStream> {
  const url = new URL(address);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return Promise.reject(new UpstreamBadResponseError('media', 'not an http(s) address'));
  return new Promise((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    let answered = false;
    const request = transport.get(url, { headers: { accept: 'image/*' } }, (response) => {
      answered = true;
      const status = response.statusCode ?? 0;
      const contentType = (response.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
      if (status !== 200) {
        response.resume();
        reject(new UpstreamHttpError('media', status));
        return;
      }
      if (!IMAGE.test(contentType)) {
        response.resume();
        reject(new UpstreamBadResponseError('media', 'not an image'));
        return;
      }
      const length = Number(response.headers['content-length']);
      resolve({ contentType, ...(Number.isInteger(length) && length >= 0 ? { contentLength: length } : {}), body: response });
    });
    // idle for timeoutMs, before the headers or between two chunks of the image: the request is given up
    request.setTimeout(timeoutMs, () => {
      if (!answered) reject(new UpstreamTimeoutError('media', timeoutMs));
      request.destroy(new UpstreamTimeoutError('media', timeoutMs));
    });
    request.on('error', (error) => {
      if (!answered) reject(error instanceof UpstreamTimeoutError ? error : new UpstreamNetworkError('media', { cause: error }));
    });
  });
}
