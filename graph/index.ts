// Shared pure modules: importable by the workflow bundle (no Node builtins).
export * from './terminology';
export * from './errors';
export * from './schema';
export * from './canonical';
export * from './expression';
export * from './validate';
export * from './dsl';
export * from './correlation';
export * from './compat';
export * from './redact';
export * from './search-attributes';
export type * from './wire';
