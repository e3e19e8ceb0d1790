import http from 'node:http';
import { createSimulatorApp, DEFAULT_USER } from './app';
import { parseDescription } from './forms';

/**
 * Runs the simulator alone: `npm run simulator`. Environment: SIMULATOR_PORT
 * (3100), SIMULATOR_API_KEY / SIMULATOR_API_SECRET (the key the app uses),
 * SIMULATOR_CALLBACK_URL (the web key's registered callback; empty for a
 * desktop key), SIMULATOR_APP_NAME, SIMULATOR_APP_SUBTITLE,
 * SIMULATOR_APP_DESCRIPTION (text, or JSON language → text),
 * SIMULATOR_APP_DEVELOPER, SIMULATOR_APP_WEBSITE, SIMULATOR_FROB_TTL_SECONDS.
 */
function main(): void {
  const env = process.env;
  const port = Number(env.SIMULATOR_PORT ?? 3100);
  const apiKey = env.SIMULATOR_API_KEY || 'simulator-key';
  const apiSecret = env.SIMULATOR_API_SECRET || 'simulator-secret';
  const callbackUrl = env.SIMULATOR_CALLBACK_URL ?? 'http://localhost:3000/connect/callback';
  const { app } = createSimulatorApp({
    apps: [
      {
        apiKey,
        apiSecret,
        name: env.SIMULATOR_APP_NAME || 'ipernity-connect',
        callbackUrl: callbackUrl || undefined,
        subtitle: env.SIMULATOR_APP_SUBTITLE || undefined,
        description: parseDescription(env.SIMULATOR_APP_DESCRIPTION),
        developer: env.SIMULATOR_APP_DEVELOPER || undefined,
        websiteUrl: env.SIMULATOR_APP_WEBSITE || undefined,
      },
    ],
    users: [DEFAULT_USER],
    frobTtlMs: env.SIMULATOR_FROB_TTL_SECONDS ? Number(env.SIMULATOR_FROB_TTL_SECONDS) * 1000 : undefined,
    openUsers: true,
    control: true,
  });
  const server = http.createServer(app);
  server.listen(port, () => {
    console.warn(`ipernity simulator on http://localhost:${port} (state in memory; key ${apiKey}; callback ${callbackUrl || 'none (desktop key)'})`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
