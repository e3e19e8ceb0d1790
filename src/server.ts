import { ConfigError, loadConfig } from './config';
import { createApp } from './web/app';
import { createHttpServer } from './web/http-server';

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
  const server = createHttpServer(handle.app);
  server.keepAliveTimeout = 65_000; // longer than common proxies' idle timeout, so they close first
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;

  process.on('unhandledRejection', (reason) => {
    logger.error({ event: 'unhandled_rejection', err: { message: (reason as Error)?.message } }, 'unhandled promise rejection');
  });

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: 'shutdown', signal }, 'shutting down: finishing requests in flight');
    const force = setTimeout(() => {
      logger.warn({ event: 'shutdown_forced' }, 'requests still in flight after the shutdown timeout; closing them');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    force.unref();
    server.close(() => {
      void handle.close().finally(() => {
        logger.info({ event: 'stopped' }, 'stopped');
        logger.flush(() => process.exit(0));
      });
    });
    server.closeIdleConnections();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  server.listen(config.port, () => {
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    logger.info(
      { event: 'listening', port, publicUrl: config.publicUrl.origin, sessionStore: config.session.store, mode: config.ipernity.mode, sandbox: config.sandbox },
      config.sandbox
        ? `ipernity-connect (sandbox, built-in ipernity simulator) on ${config.publicUrl.origin}`
        : `ipernity-connect on ${config.publicUrl.origin}`,
    );
  });
}

if (require.main === module) {
  void main();
}
