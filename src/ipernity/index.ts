export * from './errors';
export * from './signature';
export * from './permissions';
export * from './catalogue';
export { METHODS } from './methods';
export * from './frob';
export * from './authorize-url';
export * from './client';
export * from './media';
