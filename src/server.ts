import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig } from './config';
import { createApp, type AppHandle } from './app';
import { createHttpServer, requestTimeoutFor } from './http-server';

/** The app's listeners, once they listen. */
export interface Listening {
  server: http.Server;
  /** `/metrics` on a port of their own (`METRICS_HOST:METRICS_PORT`), when the app has them there and the port could be had. */
  metricsServer?: http.Server;
  /** Stops accepting, lets requests in flight finish for at most `SHUTDOWN_TIMEOUT_MS`, then closes the app. */
  stop(): Promise<void>;
}

function listenOn(server: http.Server, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = (): void => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    };
    if (host === undefined) server.listen(port, listening);
    else server.listen(port, host, listening);
  });
}

/**
 * Listens with the app on `PORT` and, when it has its metrics apart
 * (`handle.metricsApp`), with those on `METRICS_HOST:METRICS_PORT`. A
 * metrics port that cannot be had is logged and the site served without
 * them; the main port failing rejects.
 */
export async function listen(handle: AppHandle): Promise<Listening> {
  const { config, logger } = handle;
  // a server that takes uploads waits for a slow visitor's whole file, not only 30 s
  const uploads = config.gateway.methods.includes('upload.file') || config.homePage === 'photos';
  const server = createHttpServer(handle.app, { requestTimeout: requestTimeoutFor(uploads ? config.gateway.uploadMaxBytes : undefined) });
  const port = await listenOn(server, config.port);
  logger.info(
    { event: 'listening', port, publicUrl: config.publicUrl.origin, sessionStore: config.session.store, mode: config.ipernity.mode, sandbox: config.sandbox },
    config.sandbox
      ? `ipernity-connect (sandbox, built-in ipernity simulator) on ${config.publicUrl.origin}`
      : `ipernity-connect on ${config.publicUrl.origin}`,
  );

  let metricsServer: http.Server | undefined;
  if (handle.metricsApp) {
    const { host } = config.metrics;
    const candidate = createHttpServer(handle.metricsApp);
    try {
      const metricsPort = await listenOn(candidate, config.metrics.port, host);
      metricsServer = candidate;
      logger.info({ event: 'metrics_listening', host, port: metricsPort }, `metrics on http://${host.includes(':') ? `[${host}]` : host}:${metricsPort}/metrics (not on the main port: no METRICS_TOKEN)`);
    } catch (error) {
      const { message, code } = error as NodeJS.ErrnoException;
      logger.error(
        { event: 'metrics_listen_failed', host, port: config.metrics.port, err: { message, code } },
        'metrics could not listen on METRICS_HOST:METRICS_PORT; serving the site without /metrics',
      );
    }
  }

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= new Promise<void>((resolve) => {
      const servers = metricsServer ? [server, metricsServer] : [server];
      const force = setTimeout(() => {
        logger.warn({ event: 'shutdown_forced' }, 'requests still in flight after the shutdown timeout; closing them');
        for (const each of servers) each.closeAllConnections();
      }, config.shutdownTimeoutMs);
      force.unref();
      let open = servers.length;
      for (const each of servers) {
        each.close(() => {
          open -= 1;
          if (open > 0) return;
          clearTimeout(force);
          void handle.close().finally(resolve);
        });
        each.closeIdleConnections();
      }
    }));
  return { server, metricsServer, stop };
}

/** Starts the server: reads the configuration, listens, and shuts down gracefully on SIGTERM/SIGINT. */
export async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  const handle = createApp(config);
  const { logger } = handle;

  process.on('unhandledRejection', (reason) => {
    logger.error({ event: 'unhandled_rejection', err: { message: (reason as Error)?.message } }, 'unhandled promise rejection');
  });

  const listening = listen(handle);
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'shutdown', signal }, 'shutting down: finishing requests in flight');
    void listening
      .then((servers) => servers.stop(), () => undefined)
      .finally(() => {
        logger.info({ event: 'stopped' }, 'stopped');
        logger.flush(() => process.exit(0));
      });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  try {
    await listening;
  } catch (error) {
    const { message, code } = error as NodeJS.ErrnoException;
    logger.fatal({ event: 'listen_failed', port: config.port, err: { message, code } }, `cannot listen on PORT ${config.port}: ${message}`);
    await handle.close();
    logger.flush(() => process.exit(1));
  }
}

if (require.main === module) {
  void main();
}
