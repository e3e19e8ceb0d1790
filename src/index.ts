/**
 * ipernity-connect as a library: the protocol, the flow as an Express
 * router, the permission guard, and the application the server runs.
 */
export * from './ipernity';
export { loadConfig, ConfigError, DEFAULTS, type Config } from './config';
export { createApp, type AppHandle, type AppDeps } from './web/app';
export { createConnectRouter, type ConnectRouterOptions } from './web/connect-router';
export { createAttemptCookie, type AttemptCookie, type AttemptCookieOptions } from './web/attempts';
export { createPermissionGuard } from './web/guard';
export { createSimulator, createSimulatorApp, type SimulatorOptions } from './simulator/app';
export { SqliteSessionStore } from './web/sqlite-store';
export { TokenCipher } from './web/token-cipher';
