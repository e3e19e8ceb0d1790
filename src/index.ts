/**
 * ipernity-connect as a library: the protocol, the flow as an Express
 * router, the permission guard, the visitor-bound client and the gateway,
 * and the application the server runs.
 */
export * from './ipernity';
export { loadConfig, ConfigError, DEFAULTS, type Config } from './config';
export { createApp, STATIC_DIR, type AppHandle, type AppDeps } from './app';
export { createHttpServer } from './http-server';
export { createConnectRouter, type ConnectRouterOptions } from './flow/router';
export { createAttemptCookie, type AttemptCookie, type AttemptCookieOptions } from './flow/attempts';
// the parts createConnectRouter takes, for a site that assembles its own app
export { createCsrf, type Csrf, type CsrfOptions } from './security/csrf';
export { createRenderer, type Renderer, type RendererOptions } from './web/render';
export { createSessionStack, type SessionStack } from './sessions/stack';
export { createErrorHandler, notFound, type ErrorHandlerOptions } from './web/error-handler';
export { createLogger, createRequestLogger } from './web/logging';
export { createPermissionGuard, type PermissionRequirement } from './flow/guard';
// using the connection: the visitor-bound client, its errors and their answers, the gateway
export { createVisitorClients, type VisitorClient, type VisitorClientOptions } from './connection/visitor-client';
export { ConnectionError, NotConnectedError, PermissionMissingError, ConnectionRevokedError } from './connection/errors';
export { answerConnectionErrors, wantsJson } from './connection/answers';
export { createGatewayRouter, GATEWAY_PATH, type GatewayOptions } from './gateway/router';
export { createForwardAuthRouter, IDENTITY_HEADERS } from './flow/forward-auth';
export { createSimulator, createSimulatorApp, type SimulatorOptions } from './simulator/app';
export { SqliteSessionStore } from './sessions/sqlite-store';
export { TokenCipher } from './security/token-cipher';
