/**
 * ipernity-connect as a library: the protocol, the flow as an Express
 * router, the permission guard, and the application the server runs.
 */
export * from './ipernity';
export { loadConfig, ConfigError, DEFAULTS, type Config } from './config';
export { createApp, STATIC_DIR, type AppHandle, type AppDeps } from './web/app';
export { createHttpServer } from './web/http-server';
export { createConnectRouter, type ConnectRouterOptions } from './web/connect-router';
export { createAttemptCookie, type AttemptCookie, type AttemptCookieOptions } from './web/attempts';
// the parts createConnectRouter takes, for a site that assembles its own app
export { createCsrf, type Csrf, type CsrfOptions } from './web/csrf';
export { createRenderer, type Renderer, type RendererOptions } from './web/render';
export { createSessionStack, type SessionStack } from './web/sessions';
export { createErrorHandler, notFound, type ErrorHandlerOptions } from './web/error-handler';
export { createLogger, createRequestLogger } from './web/logging';
export { createPermissionGuard } from './web/guard';
export { createSimulator, createSimulatorApp, type SimulatorOptions } from './simulator/app';
export { SqliteSessionStore } from './web/sqlite-store';
export { TokenCipher } from './web/token-cipher';
