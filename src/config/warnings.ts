import type { Config } from './index';

/** A setting that starts but lets the server misread requests: said once, at start-up. */
export interface ConfigWarning {
  event: string;
  message: string;
}

/**
 * With `TRUST_PROXY=true` any client chooses its address (and so its rate
 * limit) with `X-Forwarded-For`; with an https PUBLIC_URL and no
 * TRUST_PROXY, requests from the TLS proxy look like http and the Secure
 * session cookie is never sent.
 */
export function configWarnings(config: Pick<Config, 'trustProxy' | 'secure'>): ConfigWarning[] {
  if (config.trustProxy === true) {
    return [{ event: 'trust_proxy_permissive', message: 'TRUST_PROXY=true trusts every X-Forwarded-For hop, so clients choose their own address; set the number of proxies (1) or their subnet instead' }];
  }
  if (config.secure && config.trustProxy === false) {
    return [{ event: 'trust_proxy_missing', message: 'PUBLIC_URL is https but TRUST_PROXY is not set: behind a TLS proxy no visitor can connect; set TRUST_PROXY to the number of proxies (1) or their subnet' }];
  }
  return [];
}
